//! Test helpers: a local HTTP server that speaks a model provider's streaming wire format
//! from a script, and small store helpers.
#![allow(dead_code)]

pub mod console;
pub mod fixture_repo;
pub mod git_remote;
pub mod github_api;
pub mod pty;
pub mod repo_run;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Raw SSE text blocks, sent one per body chunk.
    pub events: Vec<String>,
    /// Break the connection after the events instead of ending the body.
    pub abort: bool,
    /// Keep the connection open after the events, sending nothing more (a stalled stream).
    pub hang: bool,
}

impl Scripted {
    pub fn sse(events: Vec<String>) -> Self {
        Scripted {
            status: 200,
            headers: vec![],
            events,
            abort: false,
            hang: false,
        }
    }

    /// A plain JSON answer (a non-streamed completion).
    pub fn json(body: &serde_json::Value) -> Self {
        Scripted {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            events: vec![body.to_string()],
            abort: false,
            hang: false,
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        Scripted {
            status,
            headers: vec![],
            events: vec![body.to_string()],
            abort: false,
            hang: false,
        }
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub at: Instant,
}

type Fallback = Arc<dyn Fn(&serde_json::Value) -> Scripted + Send + Sync>;

#[derive(Clone)]
struct ServerState {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    fallback: Option<Fallback>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

pub struct MockLlm {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl MockLlm {
    /// Serves `script` in order on `/v1/messages`, `/v1/chat/completions` and
    /// `/v1/responses`; once the script is used up, `fallback` answers (or a 500).
    pub async fn start(script: Vec<Scripted>, fallback: Option<Fallback>) -> MockLlm {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            script: Arc::new(Mutex::new(script.into())),
            fallback,
            requests: requests.clone(),
        };
        let app = Router::new()
            .route("/v1/messages", post(handle))
            .route("/v1/chat/completions", post(handle))
            .route("/v1/responses", post(handle))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockLlm {
            url: format!("http://{addr}"),
            requests,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn handle(State(state): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        headers,
        body: json.clone(),
        at: Instant::now(),
    });
    let next = state.script.lock().unwrap().pop_front();
    let scripted = match (next, &state.fallback) {
        (Some(s), _) => s,
        (None, Some(f)) => f(&json),
        (None, None) => Scripted::status(500, r#"{"error":{"message":"script exhausted"}}"#),
    };
    let mut builder = Response::builder().status(StatusCode::from_u16(scripted.status).unwrap());
    if !scripted.headers.iter().any(|(k, _)| *k == "content-type") {
        let kind = if scripted.status == 200 {
            "text/event-stream"
        } else {
            "application/json"
        };
        builder = builder.header("content-type", kind);
    }
    for (k, v) in &scripted.headers {
        builder = builder.header(*k, v);
    }
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = scripted
        .events
        .iter()
        .map(|e| Ok(Bytes::from(e.clone())))
        .collect();
    if scripted.abort {
        chunks.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut",
        )));
    }
    // The break comes after the events have gone out, as a real mid-message cut does.
    let stream = futures::StreamExt::then(futures::stream::iter(chunks), |c| async move {
        if c.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        c
    });
    if scripted.hang {
        return builder
            .body(Body::from_stream(futures::StreamExt::chain(
                stream,
                futures::stream::pending(),
            )))
            .unwrap();
    }
    builder.body(Body::from_stream(stream)).unwrap()
}

/// An Anthropic SSE event block.
pub fn anthropic_event(kind: &str, data: serde_json::Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

/// A complete Anthropic stream of `text` with the given usage.
pub fn anthropic_stream(
    text: &str,
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
) -> Vec<String> {
    use serde_json::json;
    let mut events = vec![anthropic_event(
        "message_start",
        json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5",
            "usage":{"input_tokens":input,"output_tokens":1,"cache_creation_input_tokens":cache_write,"cache_read_input_tokens":cache_read}}}),
    )];
    events.push(anthropic_event(
        "content_block_start",
        json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    ));
    events.push(anthropic_event("ping", json!({"type":"ping"})));
    for piece in text.split_inclusive('\n') {
        events.push(anthropic_event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":piece}}),
        ));
    }
    events.push(anthropic_event(
        "content_block_stop",
        json!({"type":"content_block_stop","index":0}),
    ));
    events.push(anthropic_event(
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":output}}),
    ));
    events.push(anthropic_event(
        "message_stop",
        json!({"type":"message_stop"}),
    ));
    events
}

/// A complete OpenAI-compatible stream of `text` with the given usage.
pub fn openai_stream(text: &str, prompt: u64, completion: u64, cached: u64) -> Vec<String> {
    use serde_json::json;
    let mut events = vec![format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})
    )];
    for piece in text.split_inclusive('\n') {
        events.push(format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":piece},"finish_reason":null}],"usage":null})
        ));
    }
    events.push(format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})
    ));
    events.push(format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion,"prompt_tokens_details":{"cached_tokens":cached}}})
    ));
    events.push("data: [DONE]\n\n".to_string());
    events
}

/// The ecca binary built for these tests.
pub fn ecca_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_ecca"))
}

/// The URL an `ecca mcp serve …` child prints on its first line of stdout ("NAME listening
/// on URL"); the child must have been spawned with stdout piped.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    url
}

/// Fails (never skips) when Docker or the sandbox image is missing, saying what to do.
pub fn require_docker_and_sandbox() {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "ecca-sandbox:latest"])
        .output();
    match out {
        Err(e) => panic!(
            "these tests need a Docker engine and the docker CLI ({e}); run scripts/test.sh, which installs and starts one"
        ),
        Ok(o) if !o.status.success() => panic!(
            "these tests need a Docker engine with the ecca-sandbox image: {}; run scripts/test.sh (it starts dockerd and runs `ecca images build`)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(_) => {}
    }
}

/// A supervisor on `dir` with the config `configure` shapes and a client `acme` ($100 a month).
pub async fn supervisor_with_acme(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut ecca::config::Config),
) -> ecca::supervisor::Supervisor {
    let mut config = ecca::config::Config::default();
    configure(&mut config);
    let sup = ecca::supervisor::Supervisor::start(ecca::supervisor::SupervisorOptions::new(
        dir.to_path_buf(),
        config,
    ))
    .await
    .unwrap();
    sup.execute(ecca::supervisor::Command::UpsertClient {
        id: "acme".into(),
        name: "Acme".into(),
        monthly_budget_micros: 100_000_000,
    })
    .await
    .unwrap();
    sup
}

/// `ecca --data-dir DIR`, with no model key or endpoint taken from the test's environment.
pub fn ecca_command(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(ecca_bin());
    cmd.arg("--data-dir").arg(dir);
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ECCA_CONFIG")
        .env_remove("ECCA_HOME");
    cmd
}

/// Polls `condition` until it holds; fails saying `what` after `secs` seconds. The deadline
/// is generous: these tests must hold on a machine whose cores are busy with other builds.
pub fn wait_until(what: &str, secs: u64, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    while !condition() {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every row of `sql` from the store of an ecca that is done with it, read-only.
pub fn read_rows<T>(
    db: &std::path::Path,
    sql: &str,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement
        .query_map([], read)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect::<Result<Vec<T>, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// One value read from the store of a (possibly still starting) ecca, read-only. `None`
/// while the file does not exist, its schema is not migrated yet (`table` is missing), or
/// the store is busy: a caller polls until it answers.
pub fn read_store<T>(
    db: &std::path::Path,
    table: &str,
    sql: &str,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Option<T> {
    use rusqlite::{Connection, OpenFlags};
    if !db.exists() {
        return None;
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
    let migrated: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .ok()?;
    if migrated == 0 {
        return None;
    }
    conn.query_row(sql, [], read).ok()
}
