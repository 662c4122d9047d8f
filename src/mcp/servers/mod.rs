//! The six MCP servers ecca ships, each a subcommand of the same binary
//! (`ecca mcp serve NAME --listen ADDR`) speaking Streamable HTTP on `/mcp`.

pub mod client_github;
pub mod code_assistant;
pub mod code_context;
pub mod code_execution;
pub mod confine;
mod http_face;
pub mod linter;
pub mod typescript;
pub mod vector_code;

use rmcp::ServerHandler;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The servers and their default ports.
pub const SERVERS: &[(&str, u16)] = &[
    ("code-context", 8100),
    ("code-assistant", 8101),
    ("code-execution", 8102),
    ("vector-code", 8103),
    ("linter", 8104),
    ("client-github", 8110),
];

/// The largest request a server reads; a larger one is answered with a JSON-RPC error
/// naming this limit (HTTP 413).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// How long a stop waits for the answers of requests in flight before closing anyway.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How one of ecca's servers introduces itself: its own name and ecca's version, so a
/// client (and an operator reading its logs) can tell which server it reached.
pub fn server_info(name: &str, instructions: Option<&str>) -> ServerConfig {
    let info =
        Implementation::new(name, env!("CARGO_PKG_VERSION")).with_title(format!("ecca {name}"));
    let config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(info);
    match instructions {
        Some(text) => config.with_instructions(text),
        None => config,
    }
}

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    stop: CancellationToken,
    drain: http_face::Drain,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Refuses new requests, waits (at most 10 s) until the answers of those in flight
    /// have been written, then closes the sessions and waits for the listener to close.
    pub async fn stop(self) {
        if !self.drain.close(STOP_WAIT).await {
            tracing::warn!(
                "the MCP server on {} stopped with requests still unanswered after {} s",
                self.addr,
                STOP_WAIT.as_secs()
            );
        }
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Stops without waiting.
    pub fn abort(&self) {
        self.stop.cancel();
    }
}

/// How a server meets the network beyond MCP itself.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Browser origins allowed besides loopback ones (`http://localhost:5173`, …), for an
    /// operator who drives a server from a web page of their own.
    pub allowed_origins: Vec<String>,
}

/// Serves `make()`'s handler on `listen` at `/mcp`. Each session gets a fresh handler.
pub async fn serve<H, F>(listen: SocketAddr, make: F) -> Result<Running, String>
where
    H: ServerHandler + Send + Sync + 'static,
    F: Fn() -> H + Send + Sync + 'static,
{
    serve_with(listen, ServeOptions::default(), make).await
}

/// [`serve`], with the HTTP face's options.
pub async fn serve_with<H, F>(
    listen: SocketAddr,
    options: ServeOptions,
    make: F,
) -> Result<Running, String>
where
    H: ServerHandler + Send + Sync + 'static,
    F: Fn() -> H + Send + Sync + 'static,
{
    let stop = CancellationToken::new();
    let service: StreamableHttpService<H, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(make()),
        Default::default(),
        StreamableHttpServerConfig::default()
            .with_sse_keep_alive(None)
            .with_max_request_body_bytes(MAX_REQUEST_BYTES)
            .with_cancellation_token(stop.child_token()),
    );
    let allowed = Arc::new(options.allowed_origins);
    let drain = http_face::Drain::default();
    let tracked = drain.clone();
    // The drain is the outer layer: a stopping server refuses before anything else runs.
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(move |request, next| {
            http_face::guard(allowed.clone(), request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            tracked.clone().track(request, next)
        }));
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        format!("could not listen on {listen}: {e}; pick another address with --listen")
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("could not read the listening address: {e}"))?;
    let shutdown = stop.clone();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
            .await;
        if let Err(e) = result {
            tracing::error!("MCP server on {addr} stopped: {e}");
        }
    });
    Ok(Running {
        addr,
        url: format!("http://{addr}/mcp"),
        stop,
        drain,
        task,
    })
}

/// A tool's failure as the sentence the caller sees.
pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, String> {
    Err(message.into())
}
