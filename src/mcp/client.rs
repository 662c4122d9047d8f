//! The MCP client manager: one connection per server over Streamable HTTP, tool discovery,
//! calls bounded by a timeout from start to answer (connecting included), reconnection
//! when a server went away, and health with call latency for the console.
//!
//! A call whose connection broke before its answer is sent again only when that cannot
//! run the tool twice: when the request never reached the server, or when the tool only
//! reads. Otherwise the caller hears that it may or may not have run, and what to check.

mod explain;
mod resend;

use crate::engine::tools::ToolCallStats;
use explain::{Failure, seconds};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock,
    Implementation, Tool,
};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::SseRetryPolicy;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A failed call, split by what the caller should make of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The server could not be reached; the call never reached it.
    #[error("the {server} server at {url} did not answer: {detail}")]
    Unreachable {
        server: String,
        url: String,
        detail: String,
    },
    /// The connection broke after the call went out and before its answer, and the tool
    /// changes something, so it was not sent again.
    #[error(
        "{server}.{tool} may or may not have run: the connection to the {server} server at \
         {url} broke before its answer ({reason}); {check}"
    )]
    MayHaveRun {
        server: String,
        tool: String,
        url: String,
        reason: String,
        check: String,
    },
    /// The call took longer than its timeout.
    #[error("{server}.{tool} took longer than {secs} s")]
    Timeout {
        server: String,
        tool: String,
        secs: u64,
    },
    /// The tool ran and said no (bad arguments, a refused path, …).
    #[error("{0}")]
    Tool(String),
    #[error("no server named {0} is configured")]
    Unknown(String),
}

/// What the console shows about a server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerHealth {
    pub name: String,
    pub url: String,
    pub connected: bool,
    pub tools: usize,
    pub calls: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// Median of the last 64 calls, in milliseconds.
    pub latency_p50_ms: Option<f64>,
}

struct Conn {
    service: Option<RunningService<RoleClient, ClientConfig>>,
    tools: Vec<Tool>,
    /// The server introduced itself as one of ecca's, whose read-only tools ecca knows.
    ecca_server: bool,
}

struct Server {
    url: String,
    /// Held while connecting; health never waits on it.
    conn: Mutex<Conn>,
    stats: std::sync::Mutex<Stats>,
}

#[derive(Default)]
struct Stats {
    connected: bool,
    tools: usize,
    calls: u64,
    failures: u64,
    last_error: Option<String>,
    latencies_ms: VecDeque<f64>,
    per_tool: BTreeMap<String, ToolStats>,
}

/// Calls of one tool: how many, how many failed, the latest latencies.
#[derive(Default)]
struct ToolStats {
    calls: u64,
    errors: u64,
    latencies_ms: VecDeque<f64>,
}

/// Latencies kept per tool for its percentiles.
const TOOL_LATENCIES: usize = 256;

impl Server {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
pub struct McpClients {
    servers: Arc<BTreeMap<String, Arc<Server>>>,
    timeout: Duration,
    connect_timeout: Duration,
}

/// Longest wait to connect to a server, unless the call's own timeout is shorter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A broken event stream is resumed a few times at short intervals, then given up: the
/// default retries forever, which leaves a call to a dead server waiting for good.
#[derive(Debug)]
struct BriefResume;

impl SseRetryPolicy for BriefResume {
    fn retry(&self, attempt: usize) -> Option<Duration> {
        (attempt < 3).then(|| Duration::from_millis(200 << attempt))
    }
}

impl McpClients {
    /// `servers`: name → endpoint URL. `timeout` bounds each call from start to answer.
    pub fn new(servers: impl IntoIterator<Item = (String, String)>, timeout: Duration) -> Self {
        let servers = servers
            .into_iter()
            .map(|(name, url)| {
                let server = Server {
                    url,
                    conn: Mutex::new(Conn {
                        service: None,
                        tools: Vec::new(),
                        ecca_server: false,
                    }),
                    stats: std::sync::Mutex::new(Stats::default()),
                };
                (name, Arc::new(server))
            })
            .collect();
        McpClients {
            servers: Arc::new(servers),
            timeout,
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
        }
    }

    /// How long connecting (with its retries) may take, at most the call timeout.
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout.min(self.timeout);
        self
    }

    pub fn has(&self, name: &str) -> bool {
        self.servers.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    fn server(&self, name: &str) -> Result<&Arc<Server>, CallError> {
        self.servers
            .get(name)
            .ok_or_else(|| CallError::Unknown(name.to_string()))
    }

    /// A live peer for `name`, connecting (with backoff, within the connect timeout) when
    /// there is none. `fresh` drops the current connection first.
    async fn peer(&self, name: &str, fresh: bool) -> Result<Peer<RoleClient>, CallError> {
        let server = self.server(name)?;
        let mut conn = server.conn.lock().await;
        if fresh {
            // Dropping closes it in the background; waiting here could cost a dead server's
            // session-close timeout.
            conn.service = None;
        }
        if let Some(s) = &conn.service
            && !s.is_closed()
        {
            return Ok(s.peer().clone());
        }
        crate::install_tls_provider();
        let deadline = Instant::now() + self.connect_timeout;
        let mut wait = Duration::from_millis(100);
        let detail = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, connect(&server.url)).await {
                Ok(Ok((service, tools))) => {
                    let peer = service.peer().clone();
                    conn.ecca_server = is_ecca_server(&peer);
                    {
                        let mut stats = server.stats();
                        stats.connected = true;
                        stats.tools = tools.len();
                    }
                    conn.tools = tools;
                    conn.service = Some(service);
                    return Ok(peer);
                }
                Ok(Err(reason)) if Instant::now() + wait < deadline => {
                    tracing::debug!("connecting to {name} at {}: {reason}", server.url);
                }
                Ok(Err(reason)) => break reason,
                Err(_) => break format!("no answer within {}", seconds(self.connect_timeout)),
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        };
        {
            let mut stats = server.stats();
            stats.connected = false;
            stats.last_error = Some(detail.clone());
        }
        Err(CallError::Unreachable {
            server: name.into(),
            url: server.url.clone(),
            detail,
        })
    }

    /// The tools a server offers.
    pub async fn tools(&self, name: &str) -> Result<Vec<Tool>, CallError> {
        let server = self.server(name)?.clone();
        self.peer(name, false).await?;
        let conn = server.conn.lock().await;
        Ok(conn.tools.clone())
    }

    /// Calls a tool and returns its structured result (or its text parsed as JSON).
    pub async fn call(&self, name: &str, tool: &str, args: Value) -> Result<Value, CallError> {
        let reply = self.call_tool(name, tool, args).await?;
        let text = text_of(&reply);
        Ok(reply
            .structured_content
            .unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Calls a tool and returns its whole result, every kind of content included. A tool
    /// that answered with an error is a [`CallError::Tool`].
    pub async fn call_tool(
        &self,
        name: &str,
        tool: &str,
        args: Value,
    ) -> Result<CallToolResult, CallError> {
        let server = self.server(name)?.clone();
        let arguments = match args {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(CallError::Tool(
                    "tool arguments must be a JSON object".into(),
                ));
            }
        };
        let started = Instant::now();
        let result = match tokio::time::timeout(
            self.timeout,
            self.call_resending_when_safe(name, &server, tool, arguments),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                server: name.into(),
                tool: tool.into(),
                secs: self.timeout.as_secs(),
            }),
        };
        let mut stats = server.stats();
        stats.calls += 1;
        let per_tool = stats.per_tool.entry(tool.to_string()).or_default();
        per_tool.calls += 1;
        per_tool.errors += u64::from(result.is_err());
        per_tool
            .latencies_ms
            .push_back(started.elapsed().as_secs_f64() * 1000.0);
        if per_tool.latencies_ms.len() > TOOL_LATENCIES {
            per_tool.latencies_ms.pop_front();
        }
        match &result {
            Ok(_) | Err(CallError::Tool(_)) => {
                stats
                    .latencies_ms
                    .push_back(started.elapsed().as_secs_f64() * 1000.0);
                if stats.latencies_ms.len() > 64 {
                    stats.latencies_ms.pop_front();
                }
            }
            Err(e) => {
                stats.failures += 1;
                stats.last_error = Some(e.to_string());
            }
        }
        result
    }

    /// One attempt, and a second on a fresh connection when the first cannot have run the
    /// tool or running it twice is harmless.
    async fn call_resending_when_safe(
        &self,
        name: &str,
        server: &Server,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<CallToolResult, CallError> {
        let mut fresh = false;
        loop {
            let peer = self.peer(name, fresh).await?;
            let params =
                CallToolRequestParams::new(tool.to_string()).with_arguments(arguments.clone());
            let failure = match peer.call_tool(params).await {
                Ok(reply) if reply.is_error == Some(true) => {
                    let text = text_of(&reply);
                    return Err(CallError::Tool(if text.is_empty() {
                        format!("{tool} failed")
                    } else {
                        text
                    }));
                }
                Ok(reply) => return Ok(reply),
                Err(e) => explain::call_failure(&e),
            };
            let resendable = {
                let conn = server.conn.lock().await;
                let listed = conn.tools.iter().find(|t| t.name == tool);
                resend::may_resend(tool, listed, conn.ecca_server)
            };
            match failure {
                Failure::Refused(message) => return Err(CallError::Tool(message)),
                Failure::NotSent(_) if !fresh => {}
                Failure::Cut(_) if !fresh && resendable => {}
                Failure::Cut(reason) if !resendable => {
                    server.stats().connected = false;
                    return Err(CallError::MayHaveRun {
                        server: name.into(),
                        tool: tool.into(),
                        url: server.url.clone(),
                        reason,
                        check: resend::what_to_check(tool),
                    });
                }
                Failure::NotSent(detail) | Failure::Cut(detail) => {
                    server.stats().connected = false;
                    return Err(CallError::Unreachable {
                        server: name.into(),
                        url: server.url.clone(),
                        detail,
                    });
                }
            }
            fresh = true;
        }
    }

    /// Connects to `name` anew and lists its tools, within the connect timeout: a health
    /// check that a hung server cannot stall.
    pub async fn probe(&self, name: &str) -> Result<usize, CallError> {
        self.peer(name, true).await?;
        Ok(self.server(name)?.stats().tools)
    }

    /// Every tool ecca called on each server: calls, errors, p50 and p95 latency.
    pub fn tool_stats(&self) -> Vec<ToolCallStats> {
        let mut out = Vec::new();
        for (name, s) in self.servers.iter() {
            let stats = s.stats();
            for (tool, t) in &stats.per_tool {
                let mut l: Vec<f64> = t.latencies_ms.iter().copied().collect();
                l.sort_by(|a, b| a.total_cmp(b));
                let at = |q: f64| {
                    l.get(((l.len() as f64 - 1.0) * q).round() as usize)
                        .copied()
                };
                out.push(ToolCallStats {
                    server: name.clone(),
                    url: s.url.clone(),
                    tool: tool.clone(),
                    calls: t.calls,
                    errors: t.errors,
                    p50_ms: at(0.5),
                    p95_ms: at(0.95),
                });
            }
        }
        out
    }

    /// Health of every server, from what calls saw: no network, no waiting on a connect.
    pub async fn health(&self) -> Vec<ServerHealth> {
        self.servers
            .iter()
            .map(|(name, s)| {
                let stats = s.stats();
                let mut l: Vec<f64> = stats.latencies_ms.iter().copied().collect();
                l.sort_by(|a, b| a.total_cmp(b));
                ServerHealth {
                    name: name.clone(),
                    url: s.url.clone(),
                    connected: stats.connected,
                    tools: stats.tools,
                    calls: stats.calls,
                    failures: stats.failures,
                    last_error: stats.last_error.clone(),
                    latency_p50_ms: l.get(l.len() / 2).copied(),
                }
            })
            .collect()
    }
}

/// One connection: the MCP handshake and the tool list, or why not in words.
async fn connect(
    url: &str,
) -> Result<(RunningService<RoleClient, ClientConfig>, Vec<Tool>), String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.retry_config = Arc::new(BriefResume);
    let transport = StreamableHttpClientTransport::from_config(config);
    let hello = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("ecca", env!("CARGO_PKG_VERSION")),
    );
    let service = hello
        .serve(transport)
        .await
        .map_err(|e| explain::connect_failure(&e))?;
    let tools = service
        .peer()
        .list_all_tools()
        .await
        .map_err(|e| explain::list_failure(&e))?;
    Ok((service, tools))
}

fn is_ecca_server(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .and_then(|info| info.server_info.clone())
        .is_some_and(|i| i.title.as_deref() == Some(&format!("ecca {}", i.name)))
}

fn text_of(reply: &CallToolResult) -> String {
    reply
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line for content that is not text, so that nothing a tool returned goes unmentioned.
pub fn describe_content(content: &ContentBlock) -> Option<String> {
    Some(match content {
        ContentBlock::Text(_) => return None,
        ContentBlock::Image(i) => format!("[image {}, {} bytes]", i.mime_type, base64_len(&i.data)),
        ContentBlock::Audio(a) => format!("[audio {}, {} bytes]", a.mime_type, base64_len(&a.data)),
        ContentBlock::ResourceLink(r) => format!(
            "[resource link {}{}]",
            r.uri,
            r.mime_type
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        ),
        ContentBlock::Resource(e) => match &e.resource {
            rmcp::model::ResourceContents::TextResourceContents {
                uri,
                mime_type,
                text,
                ..
            } => format!(
                "[embedded resource {uri}, {}, {} chars]\n{text}",
                mime_type.as_deref().unwrap_or("text"),
                text.chars().count()
            ),
            rmcp::model::ResourceContents::BlobResourceContents {
                uri,
                mime_type,
                blob,
                ..
            } => format!(
                "[embedded resource {uri}, {}, {} bytes]",
                mime_type.as_deref().unwrap_or("binary"),
                base64_len(blob)
            ),
            _ => "[embedded resource of a kind ecca does not know]".to_string(),
        },
        _ => "[content of a kind ecca does not know]".to_string(),
    })
}

/// The decoded size of base64 data, without decoding it.
fn base64_len(data: &str) -> usize {
    let data = data.trim_end();
    let padding = data.chars().rev().take_while(|c| *c == '=').count();
    (data.len() / 4 * 3).saturating_sub(padding)
}
