//! The servers' HTTP face: names, Origin, JSON-RPC refusals, annotations, stopping.

use super::*;

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
        "lint_typescript",
    ];
    let changes = [
        "apply_diff",
        "create_file",
        "refactor",
        "store_snippet",
        "run_python",
        "run_node",
        "run_bash",
        "run_typescript",
        "run_in_repo",
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
