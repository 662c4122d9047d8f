//! The MCP client manager: one connection per server over Streamable HTTP, tool discovery,
//! calls with a per-call timeout, reconnection with backoff when a server went away, and
//! health with call latency for the console.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, Tool};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
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
    /// The server could not be reached, even after reconnecting.
    #[error("the {server} server at {url} did not answer: {detail}")]
    Unreachable {
        server: String,
        url: String,
        detail: String,
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
}

struct Server {
    url: String,
    conn: Mutex<Conn>,
    stats: std::sync::Mutex<Stats>,
}

#[derive(Default)]
struct Stats {
    calls: u64,
    failures: u64,
    last_error: Option<String>,
    latencies_ms: VecDeque<f64>,
}

#[derive(Clone)]
pub struct McpClients {
    servers: Arc<BTreeMap<String, Arc<Server>>>,
    timeout: Duration,
}

/// Attempts and waits when (re)connecting: 0.1 s doubling, about 6 s in all.
const CONNECT_ATTEMPTS: u32 = 6;

impl McpClients {
    /// `servers`: name → endpoint URL.
    pub fn new(servers: impl IntoIterator<Item = (String, String)>, timeout: Duration) -> Self {
        let servers = servers
            .into_iter()
            .map(|(name, url)| {
                let server = Server {
                    url,
                    conn: Mutex::new(Conn {
                        service: None,
                        tools: Vec::new(),
                    }),
                    stats: std::sync::Mutex::new(Stats::default()),
                };
                (name, Arc::new(server))
            })
            .collect();
        McpClients {
            servers: Arc::new(servers),
            timeout,
        }
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

    /// A live peer for `name`, connecting (with backoff) when there is none.
    async fn peer(&self, name: &str, fresh: bool) -> Result<Peer<RoleClient>, CallError> {
        let server = self.server(name)?;
        let mut conn = server.conn.lock().await;
        if fresh && let Some(old) = conn.service.take() {
            let _ = old.cancel().await;
        }
        if let Some(s) = &conn.service
            && !s.is_closed()
        {
            return Ok(s.peer().clone());
        }
        crate::install_tls_provider();
        let mut wait = Duration::from_millis(100);
        let mut last = String::new();
        for attempt in 0..CONNECT_ATTEMPTS {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(server.url.as_str()),
            );
            match tokio::time::timeout(self.timeout, ClientConfig::default().serve(transport)).await
            {
                Ok(Ok(service)) => {
                    let tools = service.peer().list_all_tools().await.unwrap_or_default();
                    let peer = service.peer().clone();
                    conn.tools = tools;
                    conn.service = Some(service);
                    return Ok(peer);
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {} s", self.timeout.as_secs()),
            }
            if attempt + 1 < CONNECT_ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(CallError::Unreachable {
            server: name.into(),
            url: server.url.clone(),
            detail: last,
        })
    }

    /// The tools a server offers.
    pub async fn tools(&self, name: &str) -> Result<Vec<Tool>, CallError> {
        self.peer(name, false).await?;
        let conn = self.server(name)?.conn.lock().await;
        Ok(conn.tools.clone())
    }

    /// Calls a tool and returns its structured result (or its text parsed as JSON). A
    /// transport failure is retried once on a fresh connection: servers restart.
    pub async fn call(&self, name: &str, tool: &str, args: Value) -> Result<Value, CallError> {
        let server = self.server(name)?.clone();
        let started = Instant::now();
        let result = self.call_once(name, tool, &args, false).await;
        let result = match result {
            Err(CallError::Unreachable { .. }) => self.call_once(name, tool, &args, true).await,
            other => other,
        };
        let mut stats = server.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.calls += 1;
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

    async fn call_once(
        &self,
        name: &str,
        tool: &str,
        args: &Value,
        fresh: bool,
    ) -> Result<Value, CallError> {
        let peer = self.peer(name, fresh).await?;
        let arguments = match args {
            Value::Object(m) => m.clone(),
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(CallError::Tool(
                    "tool arguments must be a JSON object".into(),
                ));
            }
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let reply = match tokio::time::timeout(self.timeout, peer.call_tool(params)).await {
            Err(_) => {
                return Err(CallError::Timeout {
                    server: name.into(),
                    tool: tool.into(),
                    secs: self.timeout.as_secs(),
                });
            }
            Ok(Err(rmcp::ServiceError::McpError(e))) => {
                return Err(CallError::Tool(e.message.to_string()));
            }
            Ok(Err(e)) => {
                let url = self.server(name)?.url.clone();
                return Err(CallError::Unreachable {
                    server: name.into(),
                    url,
                    detail: e.to_string(),
                });
            }
            Ok(Ok(r)) => r,
        };
        let text: String = reply
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        if reply.is_error == Some(true) {
            return Err(CallError::Tool(if text.is_empty() {
                format!("{tool} failed")
            } else {
                text
            }));
        }
        Ok(reply
            .structured_content
            .unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Health of every server, without touching the network.
    pub async fn health(&self) -> Vec<ServerHealth> {
        let mut out = Vec::new();
        for (name, s) in self.servers.iter() {
            let (connected, tools) = {
                let conn = s.conn.lock().await;
                (
                    conn.service.as_ref().is_some_and(|c| !c.is_closed()),
                    conn.tools.len(),
                )
            };
            let stats = s.stats.lock().unwrap_or_else(|p| p.into_inner());
            let mut l: Vec<f64> = stats.latencies_ms.iter().copied().collect();
            l.sort_by(|a, b| a.total_cmp(b));
            out.push(ServerHealth {
                name: name.clone(),
                url: s.url.clone(),
                connected,
                tools,
                calls: stats.calls,
                failures: stats.failures,
                last_error: stats.last_error.clone(),
                latency_p50_ms: l.get(l.len() / 2).copied(),
            });
        }
        out
    }
}
