//! The MCP client against servers that die, hang or restart mid-call, and the servers'
//! HTTP face. A relay on loopback stands between client and server so that a test can cut
//! every connection at once, as a server that dies would, and relay to a new server on the
//! same address, as a server that restarts would.

#[path = "../common/mod.rs"]
mod common;

use ecca::engine::tools::{ToolOutcome, ToolRequest, Tools};
use ecca::mcp::client::McpClients;
use ecca::mcp::servers::{self, Running};
use ecca::mcp::tools::McpTools;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Resource, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Counts how often each tool ran, across restarts. The first run of each tool never
/// answers (it is the one a test cuts); later runs answer at once.
#[derive(Clone)]
struct Probe {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    /// What `slow` waits for before it answers.
    gate: Arc<tokio::sync::Semaphore>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct CodeArgs {
    #[allow(dead_code)]
    code: String,
}

impl Probe {
    fn new() -> Self {
        Probe {
            counts: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            tool_router: Self::tool_router(),
        }
    }

    /// Carries the annotations other servers give their tools of the same names, so the
    /// probe's tools say exactly what ecca's say, while the probe itself does not claim to
    /// be one of ecca's servers.
    fn annotated_as(mut self, tools: &[rmcp::model::Tool]) -> Self {
        for t in tools {
            if let Some(route) = self.tool_router.map.get_mut(t.name.as_ref()) {
                route.attr.annotations = t.annotations.clone();
            }
        }
        self
    }

    fn count(&self, tool: &str) -> usize {
        self.counts.lock().unwrap().get(tool).copied().unwrap_or(0)
    }

    async fn enter(&self, tool: &str) -> String {
        let n = {
            let mut counts = self.counts.lock().unwrap();
            let n = counts.entry(tool.to_string()).or_default();
            *n += 1;
            *n
        };
        if n == 1 {
            std::future::pending::<()>().await;
        }
        format!("{tool} ran")
    }
}

#[tool_router]
impl Probe {
    #[tool(description = "Never answers.")]
    async fn hang(&self) -> String {
        self.counts
            .lock()
            .unwrap()
            .entry("hang".into())
            .and_modify(|n| *n += 1)
            .or_insert(1);
        std::future::pending::<String>().await
    }

    #[tool(description = "Commits (not idempotent).")]
    async fn commit(&self) -> String {
        self.enter("commit").await
    }

    #[tool(description = "Runs Python (not idempotent).")]
    async fn run_python(&self, Parameters(_args): Parameters<CodeArgs>) -> String {
        self.enter("run_python").await
    }

    #[tool(description = "Reads.", annotations(read_only_hint = true))]
    async fn peek(&self) -> String {
        self.enter("peek").await
    }

    #[tool(description = "Reads a file, as code-context's does.")]
    async fn read_file(&self) -> String {
        self.enter("read_file").await
    }

    #[tool(description = "Creates a file, as code-assistant's does.")]
    async fn create_file(&self) -> String {
        self.enter("create_file").await
    }

    #[tool(description = "Answers once the test opens the gate.")]
    async fn slow(&self) -> String {
        self.counts
            .lock()
            .unwrap()
            .entry("slow".into())
            .and_modify(|n| *n += 1)
            .or_insert(1);
        let _ = self.gate.acquire().await;
        "slow ran".into()
    }

    #[tool(description = "How long the text is.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        format!("{} chars", args.text.len())
    }

    #[tool(description = "A picture, a link and an attachment.")]
    async fn picture(&self) -> CallToolResult {
        let mut link = Resource::new("file:///tmp/report.pdf", "report");
        link.mime_type = Some("application/pdf".into());
        CallToolResult::success(vec![
            ContentBlock::text("here it is"),
            ContentBlock::image("iVBORw==", "image/png"),
            ContentBlock::resource_link(link),
            ContentBlock::embedded_text("file:///notes.txt", "some notes"),
        ])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Probe {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A TCP relay in front of a server.
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *t.lock().unwrap();
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Relay {
            addr,
            target,
            conns,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Every open connection closes at once.
    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// The server is gone: connections close and nothing listens any more.
    fn die(&self) {
        self.accept.abort();
        self.cut();
    }

    /// The server restarts: connections close, and a new server answers on the address.
    fn restart_onto(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
        self.cut();
    }
}

async fn probe_server(probe: &Probe) -> Running {
    let p = probe.clone();
    servers::serve(([127, 0, 0, 1], 0).into(), move || p.clone())
        .await
        .unwrap()
}

/// Waits for `cond`, failing with `what` after a deadline generous to a loaded machine.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn no_type_names(text: &str) {
    for bad in [
        "rmcp::",
        "Transport [",
        "WorkerTransport",
        "the target server",
    ] {
        assert!(!text.contains(bad), "{bad:?} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_by_a_server_that_died_fails_promptly_within_its_timeout() {
    let probe = Probe::new();
    let backend = probe_server(&probe).await;
    let relay = Relay::start(backend.addr).await;
    let c = McpClients::new(
        [("probe".to_string(), relay.url())],
        Duration::from_secs(90),
    );
    let call = tokio::spawn(async move { c.call("probe", "hang", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs the call", move || p.count("hang") == 1).await;

    relay.die();
    let died = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call still waits 60 s after its server died")
        .unwrap();
    let waited = died.elapsed();
    let err = result.unwrap_err().to_string();
    assert!(
        waited < Duration::from_secs(30),
        "the call took {waited:?} to notice"
    );
    assert!(err.contains(&relay.url()), "{err}");
    assert!(err.contains("may or may not have run"), "{err}");
    no_type_names(&err);
    assert_eq!(
        probe.count("hang"),
        1,
        "a call with unknown effects is not re-sent"
    );
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_by_a_restart_is_resent_only_when_it_is_read_only() {
    let probe = Probe::new();
    let first = probe_server(&probe).await;
    let relay = Relay::start(first.addr).await;
    let c = McpClients::new(
        [("probe".to_string(), relay.url())],
        Duration::from_secs(90),
    );

    // commit: cut mid-call by a restart; the new server would run it again if asked.
    let cc = c.clone();
    let call = tokio::spawn(async move { cc.call("probe", "commit", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs commit", move || p.count("commit") == 1).await;
    let second = probe_server(&probe).await;
    relay.restart_onto(second.addr);
    first.abort();
    let err = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the cut commit still waits 60 s after the restart")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert_eq!(probe.count("commit"), 1, "commit was sent again: {err}");
    assert!(
        err.contains("probe.commit may or may not have run"),
        "{err}"
    );
    assert!(
        err.contains("look at"),
        "the error says what to check: {err}"
    );
    no_type_names(&err);

    // peek says it only reads: sending it again on the new session is safe, and answers.
    let cc = c.clone();
    let call = tokio::spawn(async move { cc.call("probe", "peek", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs peek", move || p.count("peek") == 1).await;
    let third = probe_server(&probe).await;
    relay.restart_onto(third.addr);
    second.abort();
    let answer = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the cut peek still waits 60 s after the restart")
        .unwrap()
        .unwrap();
    assert_eq!(answer, Value::String("peek ran".into()));
    assert_eq!(probe.count("peek"), 2);

    // The engine's execute step: the run gets a clear note, not a second run.
    let tools = McpTools::new(McpClients::new(
        [("code-execution".to_string(), relay.url())],
        Duration::from_secs(90),
    ));
    let request = ToolRequest::Execute {
        language: "python".into(),
        filename: "main.py".into(),
        code: "print(1)\n".into(),
    };
    let run = tokio::spawn(async move { tools.call(&request).await });
    let p = probe.clone();
    wait_until("the server runs run_python", move || {
        p.count("run_python") == 1
    })
    .await;
    let fourth = probe_server(&probe).await;
    relay.restart_onto(fourth.addr);
    third.abort();
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the cut execute step still waits 60 s after the restart")
        .unwrap();
    match outcome {
        ToolOutcome::Failed { error } => {
            assert!(error.contains("may or may not have run"), "{error}")
        }
        other => panic!("expected a failed step with a note, got {other:?}"),
    }
    assert_eq!(probe.count("run_python"), 1);
    fourth.stop().await;
}

/// A server that accepts connections and never answers.
fn hung_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    port
}

/// Runs ecca, killing it if it is still running after `limit`.
fn ecca_within(data: &Path, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Output {
    let mut child = Command::new(common::ecca_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "ecca {args:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

mod cli;
mod http_face;
