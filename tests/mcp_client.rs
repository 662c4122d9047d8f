//! The MCP client against servers that die, hang or restart mid-call, and the servers'
//! HTTP face. A relay on loopback stands between client and server so that a test can cut
//! every connection at once, as a server that dies would, and relay to a new server on the
//! same address, as a server that restarts would.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_quickly_says_why_a_server_is_down_and_fails() {
    let data = tempfile::tempdir().unwrap();
    let live = probe_server(&Probe::new()).await;
    let (hung_a, hung_b) = (hung_listener(), hung_listener());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let registry = json!({
        "live": {"port": live.addr.port()},
        "hung-a": {"port": hung_a},
        "hung-b": {"port": hung_b},
        "gone": {"port": closed},
    });
    std::fs::write(data.path().join("mcp_servers.json"), registry.to_string()).unwrap();

    let started = Instant::now();
    let out = ecca_within(
        data.path(),
        &["mcp", "status"],
        None,
        Duration::from_secs(90),
    );
    let took = started.elapsed();
    let stdout = text(&out.stdout);
    // 2 s per server, asked at once: well under the 30 s a single hung server used to cost.
    assert!(
        took < Duration::from_secs(15),
        "status took {took:?}: {stdout}"
    );
    assert!(
        !out.status.success(),
        "status exits non-zero when a server is down"
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_string()
    };
    assert!(line("live").contains(" up "), "{stdout}");
    for hung in ["hung-a", "hung-b"] {
        let l = line(hung);
        assert!(
            l.contains("down") && l.contains("no answer within 2 s"),
            "{l}"
        );
    }
    let gone = line("gone");
    assert!(
        gone.contains("down") && gone.contains("connection refused"),
        "{gone}"
    );
    no_type_names(&stdout);

    // A one-shot call to a hung server gives up at its timeout.
    let out = ecca_within(
        data.path(),
        &["mcp", "call", "hung-a", "anything", "--timeout", "3"],
        None,
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "the hung-a server at http://127.0.0.1:{hung_a}/mcp did not answer"
        )),
        "{stderr}"
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_call_shows_every_kind_of_content_takes_args_from_a_file_or_stdin_and_speaks_plainly() {
    let data = tempfile::tempdir().unwrap();
    let server = probe_server(&Probe::new()).await;
    let d = data.path();

    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "picture"],
        None,
        Duration::from_secs(60),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("here it is"), "{stdout}");
    assert!(stdout.contains("[image image/png, 4 bytes]"), "{stdout}");
    assert!(
        stdout.contains("[resource link file:///tmp/report.pdf"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[embedded resource file:///notes.txt"),
        "{stdout}"
    );

    // Arguments larger than the OS allows on a command line: from a file, and from stdin.
    let big = "x".repeat(3 * 1024 * 1024);
    let args = json!({"text": big}).to_string();
    let file = d.join("args.json");
    std::fs::write(&file, &args).unwrap();
    let at_file = format!("@{}", file.display());
    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "echo", "--args", &at_file],
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3145728 chars"),
        "{}",
        text(&out.stdout)
    );
    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "echo", "--args", "-"],
        Some(args.as_bytes()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3145728 chars"),
        "{}",
        text(&out.stdout)
    );

    // Nothing listening: the error names the URL and says why, in words.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/mcp");
    let out = ecca_within(
        d,
        &["mcp", "call", &url, "echo", "--timeout", "5"],
        None,
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("the MCP server at {url} did not answer"))
            && stderr.contains("connection refused"),
        "{stderr}"
    );
    no_type_names(&stderr);
    server.stop().await;
}

/// Posts one JSON-RPC message to a server, as a browser or another client would.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: String,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.body(body).send().await.unwrap()
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_introduce_themselves_check_origins_and_answer_in_json_rpc() {
    ecca::install_tls_provider();
    let server = servers::serve(([127, 0, 0, 1], 0).into(), servers::linter::Linter::new)
        .await
        .unwrap();
    let http = reqwest::Client::new();

    let reply = post(&http, &server.url, initialize(), &[]).await;
    assert_eq!(reply.status(), 200);
    let session = reply
        .headers()
        .get("mcp-session-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = reply.text().await.unwrap();
    let init: Value = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .find(|v: &Value| v.get("result").is_some())
        .unwrap_or_else(|| panic!("no initialize result in {body}"));
    assert_eq!(init["result"]["serverInfo"]["name"], "linter", "{init}");
    assert_eq!(
        init["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );

    // A web page elsewhere may not drive the server; a local one and plain clients may.
    let refused = post(
        &http,
        &server.url,
        initialize(),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let error: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(error["jsonrpc"], "2.0");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example"),
        "{error}"
    );
    let local = post(
        &http,
        &server.url,
        initialize(),
        &[("origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(local.status(), 200);

    // Over 4 MiB: a JSON-RPC error that names the limit.
    let huge = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "lint_python", "arguments": {"code": "x".repeat(5 * 1024 * 1024)}}})
    .to_string();
    let too_big = post(
        &http,
        &server.url,
        huge,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert_eq!(too_big.status(), 413);
    let error: Value = serde_json::from_str(&too_big.text().await.unwrap()).unwrap();
    assert_eq!(error["error"]["code"], -32600);
    assert_eq!(
        error["id"], 2,
        "the error answers the request by its id: {error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 MiB"),
        "{error}"
    );

    // ecca's own client hears the limit at once, not after its call timeout.
    let c = McpClients::new(
        [("linter".to_string(), server.url.clone())],
        Duration::from_secs(120),
    );
    let started = Instant::now();
    let err = c
        .call(
            "linter",
            "lint_python",
            json!({"code": "x".repeat(5 * 1024 * 1024)}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("4 MiB"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the oversized call took {:?}",
        started.elapsed()
    );

    // Closing the session is a success without a body.
    let closed = http
        .delete(&server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(
        [200, 204].contains(&closed.status().as_u16()),
        "DELETE answered {}",
        closed.status()
    );
    server.stop().await;
}

/// Every tool of ecca's six servers, as `tools/list` gives it over HTTP.
async fn ecca_tools(dir: &Path) -> HashMap<String, rmcp::model::Tool> {
    use ecca::mcp::servers::client_github::{ClientGithub, GithubConfig};
    use ecca::mcp::servers::code_assistant::CodeAssistant;
    use ecca::mcp::servers::code_context::CodeContext;
    use ecca::mcp::servers::code_execution::CodeExecution;
    use ecca::mcp::servers::confine::Root;
    use ecca::mcp::servers::linter::Linter;
    use ecca::mcp::servers::vector_code::{Embedder, VectorCode};
    let at = || SocketAddr::from(([127, 0, 0, 1], 0));
    let root = Root::new(dir).unwrap();
    let (r1, r2) = (root.clone(), root);
    let vectors = VectorCode::open(dir, Embedder::Local).unwrap();
    let github = ClientGithub::new(GithubConfig {
        client_id: "acme".into(),
        token: "secret-token".into(),
        repo_url: "http://127.0.0.1:9/acme.git".into(),
        api_base: "http://127.0.0.1:9".into(),
        repo_slug: None,
        workdir: dir.join("work"),
    });
    let running = vec![
        (
            "code-context",
            servers::serve(at(), move || CodeContext::new(r1.clone()))
                .await
                .unwrap(),
        ),
        (
            "code-assistant",
            servers::serve(at(), move || CodeAssistant::new(r2.clone()))
                .await
                .unwrap(),
        ),
        (
            "code-execution",
            servers::serve(at(), || CodeExecution::new(None))
                .await
                .unwrap(),
        ),
        (
            "vector-code",
            servers::serve(at(), move || vectors.clone()).await.unwrap(),
        ),
        ("linter", servers::serve(at(), Linter::new).await.unwrap()),
        (
            "client-github",
            servers::serve(at(), move || github.clone()).await.unwrap(),
        ),
    ];
    let clients = McpClients::new(
        running
            .iter()
            .map(|(name, r)| (name.to_string(), r.url.clone())),
        Duration::from_secs(60),
    );
    let mut tools = HashMap::new();
    for (name, server) in running {
        for t in clients.tools(name).await.unwrap() {
            tools.insert(t.name.to_string(), t);
        }
        server.stop().await;
    }
    tools
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecca_servers_annotate_every_tool_and_a_cut_read_is_resent_while_create_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let tools = ecca_tools(dir.path()).await;
    let reads = [
        "list_files",
        "read_file",
        "search_code",
        "get_structure",
        "generate_diff",
        "search_similar",
        "get_pattern",
        "lint_python",
        "lint_js",
        "fix_lint",
    ];
    let changes = [
        "apply_diff",
        "create_file",
        "refactor",
        "store_snippet",
        "run_python",
        "run_node",
        "run_bash",
        "commit",
        "open_pr",
        "clone",
        "push",
    ];
    assert_eq!(
        tools.len(),
        reads.len() + changes.len(),
        "{:?}",
        tools.keys()
    );
    for name in reads {
        let said = tools[name].annotations.as_ref();
        assert_eq!(said.and_then(|a| a.read_only_hint), Some(true), "{name}");
    }
    for name in changes {
        let said = tools[name].annotations.as_ref();
        assert_eq!(said.and_then(|a| a.read_only_hint), Some(false), "{name}");
        assert!(
            said.and_then(|a| a.destructive_hint).is_some()
                && said.and_then(|a| a.idempotent_hint).is_some(),
            "{name} says whether it destroys and whether it may run twice: {said:?}"
        );
    }
    for name in ["apply_diff", "create_file", "refactor", "commit"] {
        let said = tools[name].annotations.as_ref();
        assert_eq!(said.and_then(|a| a.destructive_hint), Some(true), "{name}");
        assert_eq!(said.and_then(|a| a.idempotent_hint), Some(false), "{name}");
    }
    for name in ["push", "open_pr", "store_snippet", "run_python"] {
        let said = tools[name].annotations.as_ref();
        assert_eq!(said.and_then(|a| a.idempotent_hint), Some(false), "{name}");
    }

    // A server that is not ecca's but annotates read_file and create_file as ecca's servers
    // do: only the annotations can tell the client which one is safe to send again.
    let probe =
        Probe::new().annotated_as(&[tools["read_file"].clone(), tools["create_file"].clone()]);
    let first = probe_server(&probe).await;
    let relay = Relay::start(first.addr).await;
    let c = McpClients::new(
        [("probe".to_string(), relay.url())],
        Duration::from_secs(90),
    );

    let cc = c.clone();
    let call = tokio::spawn(async move { cc.call("probe", "create_file", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs create_file", move || {
        p.count("create_file") == 1
    })
    .await;
    let second = probe_server(&probe).await;
    relay.restart_onto(second.addr);
    first.abort();
    let err = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the cut create_file still waits 60 s after the restart")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert_eq!(
        probe.count("create_file"),
        1,
        "create_file was sent again: {err}"
    );
    assert!(err.contains("may or may not have run"), "{err}");

    let cc = c.clone();
    let call = tokio::spawn(async move { cc.call("probe", "read_file", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs read_file", move || {
        p.count("read_file") == 1
    })
    .await;
    let third = probe_server(&probe).await;
    relay.restart_onto(third.addr);
    second.abort();
    let answer = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the cut read_file still waits 60 s after the restart")
        .unwrap()
        .unwrap();
    assert_eq!(answer, Value::String("read_file ran".into()));
    assert_eq!(probe.count("read_file"), 2, "the cut read was sent again");
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_refuses_new_requests_and_answers_the_calls_in_flight() {
    let probe = Probe::new();
    let server = probe_server(&probe).await;
    let url = server.url.clone();
    let c = McpClients::new(
        [("probe".to_string(), url.clone())],
        Duration::from_secs(90),
    );
    let cc = c.clone();
    let call = tokio::spawn(async move { cc.call("probe", "slow", json!({})).await });
    let p = probe.clone();
    wait_until("the server runs slow", move || p.count("slow") == 1).await;

    let stopping = tokio::spawn(server.stop());
    // While the call runs, the server is still there but takes nothing new.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refusal = loop {
        let reply = post(&http, &url, initialize(), &[]).await;
        if reply.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break reply.json::<Value>().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "a stopping server still took a new request: {}",
            reply.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let message = refusal["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("shutting down"), "{refusal}");
    assert!(
        !stopping.is_finished(),
        "the stop did not wait for the call"
    );

    probe.gate.add_permits(1);
    let opened = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call in flight is answered")
        .unwrap();
    assert_eq!(answer.unwrap(), Value::String("slow ran".into()));
    tokio::time::timeout(Duration::from_secs(60), stopping)
        .await
        .expect("the stop ends once the call is answered")
        .unwrap();
    // Well before the stop's 10 s limit: it waited for the answer, not for its limit.
    assert!(
        opened.elapsed() < Duration::from_secs(8),
        "the stop took {:?} after the answer",
        opened.elapsed()
    );
}
