//! The six MCP servers ecca ships, each a subcommand of the same binary
//! (`ecca mcp serve NAME --listen ADDR`) speaking Streamable HTTP on `/mcp`.

pub mod client_github;
pub mod code_assistant;
pub mod code_context;
pub mod code_execution;
pub mod confine;
pub mod linter;
pub mod vector_code;

use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
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

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets calls in flight end, and waits for the listener to close.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Stops without waiting.
    pub fn abort(&self) {
        self.stop.cancel();
    }
}

/// Serves `make()`'s handler on `listen` at `/mcp`. Each session gets a fresh handler.
pub async fn serve<H, F>(listen: SocketAddr, make: F) -> Result<Running, String>
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
            .with_cancellation_token(stop.child_token()),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
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
        task,
    })
}

/// A tool's failure as the sentence the caller sees.
pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, String> {
    Err(message.into())
}
