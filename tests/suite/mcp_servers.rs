//! Each MCP server on a loopback port, driven by ecca's real client over HTTP.

use ecca::mcp::client::{CallError, McpClients};
use ecca::mcp::servers::{
    self, code_assistant::CodeAssistant, code_context::CodeContext, confine::Root, linter::Linter,
    vector_code,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ANY: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn client_for(url: &str) -> McpClients {
    McpClients::new(
        [("s".to_string(), url.to_string())],
        Duration::from_secs(60),
    )
}

async fn call(c: &McpClients, tool: &str, args: Value) -> Result<Value, CallError> {
    c.call("s", tool, args).await
}

fn tool_error(r: Result<Value, CallError>) -> String {
    match r {
        Err(CallError::Tool(msg)) => msg,
        other => panic!("expected a tool error, got {other:?}"),
    }
}

async fn names(c: &McpClients) -> Vec<String> {
    let mut n: Vec<String> = c
        .tools("s")
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    n.sort();
    n
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::write(
        p.join("src/app.py"),
        "import os\n\n\ndef greet(name):\n    return f'hi {name}'\n\n\nclass Shop:\n    pass\n",
    )
    .unwrap();
    std::fs::write(
        p.join("src/util.py"),
        "from app import greet\n\nprint(greet('x'))\n",
    )
    .unwrap();
    std::fs::write(p.join(".gitignore"), "build/\n").unwrap();
    std::fs::create_dir_all(p.join("build")).unwrap();
    std::fs::write(p.join("build/out.py"), "def greet(): pass\n").unwrap();
    std::fs::write(p.join("big.txt"), "x".repeat(300 * 1024)).unwrap();
    std::os::unix::fs::symlink("/etc", p.join("escape")).unwrap();
    dir
}

#[tokio::test]
async fn code_context_reads_searches_and_stays_in_its_root() {
    let dir = project();
    let root = Root::new(dir.path()).unwrap();
    let server = CodeContext::new(root);
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    assert_eq!(
        names(&c).await,
        ["get_structure", "list_files", "read_file", "search_code"]
    );

    let files = call(&c, "list_files", json!({})).await.unwrap();
    let paths: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"src/app.py") && !paths.iter().any(|p| p.starts_with("build/")),
        "gitignored files hidden: {paths:?}"
    );
    let only = call(&c, "list_files", json!({"contains": "util", "max": 5}))
        .await
        .unwrap();
    assert_eq!(only["files"].as_array().unwrap().len(), 1);

    let f = call(&c, "read_file", json!({"path": "src/app.py"}))
        .await
        .unwrap();
    assert!(f["content"].as_str().unwrap().starts_with("import os"));
    let big = call(&c, "read_file", json!({"path": "big.txt"}))
        .await
        .unwrap();
    assert_eq!(big["truncated"], true);
    assert!(
        big["content"]
            .as_str()
            .unwrap()
            .ends_with("[… cut by ecca: 45056 more bytes not shown …]\n")
    );

    for (path, says) in [
        ("../../etc/passwd", "leaves the project root"),
        ("/etc/passwd", "absolute path"),
        ("escape/passwd", "outside the project root"),
        ("src/missing.py", "cannot be read"),
    ] {
        let msg = tool_error(call(&c, "read_file", json!({"path": path})).await);
        assert!(msg.contains(says), "{path}: {msg}");
    }
    let msg = tool_error(call(&c, "list_files", json!({"path": "../"})).await);
    assert!(msg.contains("leaves the project root"), "{msg}");
    let bad_args = call(&c, "read_file", json!({"file": "x"})).await;
    assert!(
        matches!(bad_args, Err(CallError::Tool(_))),
        "a missing argument is refused: {bad_args:?}"
    );

    let hits = call(&c, "search_code", json!({"pattern": r"def \w+\("}))
        .await
        .unwrap();
    let found: Vec<(String, u64)> = hits["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().into(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, [("src/app.py".to_string(), 4)], "build/ is ignored");
    let msg = tool_error(call(&c, "search_code", json!({"pattern": "def ("})).await);
    assert!(msg.contains("not a valid regular expression"), "{msg}");

    let s = call(&c, "get_structure", json!({})).await.unwrap();
    let app = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "src/app.py")
        .unwrap()
        .clone();
    assert_eq!(app["language"], "python");
    assert_eq!(app["lines"], 9);
    assert_eq!(app["symbols"], json!(["def greet", "class Shop"]));
    assert!(s["tree"].as_str().unwrap().contains("  app.py\n"));
    running.stop().await;
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

#[tokio::test]
async fn code_assistant_applies_all_files_or_none() {
    let dir = project();
    let p = dir.path().to_path_buf();
    let server = CodeAssistant::new(Root::new(&p).unwrap());
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    assert_eq!(
        names(&c).await,
        ["apply_diff", "create_file", "generate_diff", "refactor"]
    );

    let old = read(&p, "src/app.py");
    let new = old.replace("hi {name}", "hello {name}");
    let d = call(
        &c,
        "generate_diff",
        json!({"path": "src/app.py", "old": old, "new": new}),
    )
    .await
    .unwrap();
    let diff = d["diff"].as_str().unwrap().to_string();
    assert!(
        diff.starts_with("--- a/src/app.py\n+++ b/src/app.py\n"),
        "{diff}"
    );

    // A second file whose hunk does not apply: nothing at all may be written.
    let broken = format!(
        "{diff}--- a/src/util.py\n+++ b/src/util.py\n@@ -1,1 +1,1 @@\n-this line is not there\n+x\n"
    );
    let msg = tool_error(call(&c, "apply_diff", json!({"diff": broken})).await);
    assert!(
        msg.contains("does not apply to src/util.py") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(read(&p, "src/app.py"), old, "the first file is untouched");
    let msg = tool_error(call(&c, "apply_diff", json!({"diff": "this is not a diff"})).await);
    assert!(msg.contains("no file headers"), "{msg}");
    let malformed = "--- a/src/app.py\n+++ b/src/app.py\n@@ -x +y @@\n-a\n";
    let msg = tool_error(call(&c, "apply_diff", json!({"diff": malformed})).await);
    assert!(msg.contains("malformed"), "{msg}");
    let escape = "--- a/../../etc/hosts\n+++ b/../../etc/hosts\n@@ -1 +1 @@\n-a\n+b\n";
    assert!(
        tool_error(call(&c, "apply_diff", json!({"diff": escape})).await)
            .contains("leaves the project root")
    );
    assert_eq!(read(&p, "src/app.py"), old);

    // A good diff changing one file and creating another.
    let create = "--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1,2 @@\n+def fresh():\n+    return 1\n";
    let applied = call(&c, "apply_diff", json!({"diff": format!("{diff}{create}")}))
        .await
        .unwrap();
    assert_eq!(
        applied["files"],
        json!([{"path": "src/app.py", "action": "modified"}, {"path": "src/new.py", "action": "created"}])
    );
    assert_eq!(read(&p, "src/app.py"), new);
    assert_eq!(read(&p, "src/new.py"), "def fresh():\n    return 1\n");

    let made = call(
        &c,
        "create_file",
        json!({"path": "docs/notes.md", "content": "# notes\n"}),
    )
    .await
    .unwrap();
    assert_eq!(made["bytes"], 8);
    let msg = tool_error(
        call(
            &c,
            "create_file",
            json!({"path": "docs/notes.md", "content": "again"}),
        )
        .await,
    );
    assert!(msg.contains("already exists"), "{msg}");
    assert!(
        tool_error(
            call(
                &c,
                "create_file",
                json!({"path": "escape/x", "content": "x"})
            )
            .await
        )
        .contains("outside the project root")
    );

    // Links to an outside folder and file, and the root itself: every write through them
    // is refused and nothing appears outside. (Planted temporary names need the server's
    // own pid and counter; tests/confinement/ plants them beside a server process.)
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path();
    std::os::unix::fs::symlink(o, p.join("out")).unwrap();
    std::os::unix::fs::symlink(o.join("t.txt"), p.join("link.txt")).unwrap();
    for (args, says) in [
        (
            json!({"path": "out/x.txt", "content": "x"}),
            "symbolic link out",
        ),
        (
            json!({"path": "out/deep/x.txt", "content": "x"}),
            "symbolic link out",
        ),
        (
            json!({"path": "link.txt", "content": "x", "overwrite": true}),
            "symbolic link",
        ),
        (
            json!({"path": "", "content": "x", "overwrite": true}),
            "project root itself",
        ),
        (
            json!({"path": ".", "content": "x", "overwrite": true}),
            "project root itself",
        ),
        (
            json!({"path": "src/../../x", "content": "x"}),
            "leaves the project root",
        ),
    ] {
        let msg = tool_error(call(&c, "create_file", args.clone()).await);
        assert!(msg.contains(says), "{args}: {msg}");
    }
    let through_link = "--- /dev/null\n+++ b/out/new.py\n@@ -0,0 +1 @@\n+x\n";
    let msg = tool_error(call(&c, "apply_diff", json!({"diff": through_link})).await);
    assert!(msg.contains("symbolic link out"), "{msg}");
    call(
        &c,
        "create_file",
        json!({"path": "made.txt", "content": "ok"}),
    )
    .await
    .unwrap();
    assert_eq!(read(&p, "made.txt"), "ok");
    assert_eq!(
        std::fs::read_dir(o).unwrap().count(),
        0,
        "nothing was written outside"
    );
    std::fs::remove_file(p.join("out")).unwrap();

    let r = call(
        &c,
        "refactor",
        json!({"old_name": "greet", "new_name": "welcome"}),
    )
    .await
    .unwrap();
    assert_eq!(
        r["files_changed"],
        json!(["src/app.py", "src/util.py"]),
        "build/ is ignored"
    );
    assert!(r["diff"].as_str().unwrap().contains("+def welcome(name):"));
    assert!(read(&p, "src/util.py").contains("from app import welcome"));
    assert_eq!(read(&p, "build/out.py"), "def greet(): pass\n");
    let msg = tool_error(call(&c, "refactor", json!({"old_name": "a b", "new_name": "c"})).await);
    assert!(msg.contains("must be identifiers"), "{msg}");
    running.stop().await;
}

#[tokio::test]
async fn linter_reports_structured_diagnostics_and_fixes() {
    let running = servers::serve(SocketAddr::from(ANY), Linter::new)
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    assert_eq!(names(&c).await, ["fix_lint", "lint_js", "lint_python"]);

    let r = call(
        &c,
        "lint_python",
        json!({"code": "import os\nprint(undefined_name)\n", "filename": "app.py"}),
    )
    .await
    .unwrap();
    assert!(r["linter"].as_str().unwrap().starts_with("ruff "), "{r}");
    let diags = r["diagnostics"].as_array().unwrap();
    let f401 = diags
        .iter()
        .find(|d| d["code"] == "F401")
        .expect("unused import found");
    assert_eq!(
        (
            f401["file"].as_str(),
            f401["line"].as_u64(),
            f401["column"].as_u64()
        ),
        (Some("app.py"), Some(1), Some(8))
    );
    assert_eq!(f401["severity"], "error");
    assert!(
        diags.iter().any(|d| d["code"] == "F821" && d["line"] == 2),
        "undefined name: {diags:?}"
    );

    let fixed = call(
        &c,
        "fix_lint",
        json!({"language": "python", "code": "import os\nx=1\n"}),
    )
    .await
    .unwrap();
    assert_eq!(fixed["fixed_code"], "x = 1\n");
    assert_eq!(fixed["diagnostics"], json!([]));

    let js = call(
        &c,
        "lint_js",
        json!({"code": "function f( {\n  return 1;\n}\n", "filename": "app.js"}),
    )
    .await
    .unwrap();
    assert!(
        js["linter"].as_str().unwrap().starts_with("node --check")
            || js["linter"].as_str().unwrap().starts_with("eslint"),
        "{js}"
    );
    let d = &js["diagnostics"][0];
    // node reports where its parser gave up: the line after the unclosed parameter list.
    assert_eq!(
        (
            d["file"].as_str(),
            d["line"].as_u64(),
            d["severity"].as_str()
        ),
        (Some("app.js"), Some(2), Some("error")),
        "{js}"
    );
    assert!(d["column"].as_u64().unwrap() > 0);
    assert!(
        d["message"].as_str().unwrap().contains("SyntaxError"),
        "{js}"
    );
    let ok = call(
        &c,
        "lint_js",
        json!({"code": "const a = 1;\nconsole.log(a);\n"}),
    )
    .await
    .unwrap();
    assert_eq!(ok["diagnostics"], json!([]));
    assert!(
        ok["note"].as_str().unwrap_or("").contains("only syntax")
            || ok["linter"].as_str().unwrap().starts_with("eslint")
    );

    assert!(
        tool_error(call(&c, "fix_lint", json!({"language": "cobol", "code": "x"})).await)
            .contains("no linter for \"cobol\"")
    );
    assert!(
        matches!(
            call(&c, "lint_python", json!({})).await,
            Err(CallError::Tool(_))
        ),
        "code is required"
    );
    running.stop().await;
}

#[tokio::test]
async fn vector_code_keeps_each_clients_snippets_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = vector_code::VectorCode::open(dir.path(), vector_code::Embedder::Local).unwrap();
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    assert_eq!(
        names(&c).await,
        ["get_pattern", "search_similar", "store_snippet"]
    );

    for (client, description, code) in [
        (
            "acme",
            "retry with exponential backoff",
            "def retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except Exception:\n            time.sleep(2 ** i)\n",
        ),
        (
            "acme",
            "parse a csv of orders",
            "import csv\ndef orders(path):\n    return list(csv.DictReader(open(path)))\n",
        ),
        (
            "globex",
            "retry a flaky call with backoff",
            "def retry_call(f):\n    return f()\n",
        ),
    ] {
        let r = call(&c, "store_snippet", json!({"client_id": client, "language": "python", "description": description, "code": code, "quality": 8.5})).await.unwrap();
        assert!(r["id"].as_i64().unwrap() > 0);
    }
    let acme = call(
        &c,
        "search_similar",
        json!({"client_id": "acme", "query": "retry a failing request with backoff", "limit": 5}),
    )
    .await
    .unwrap();
    let found = acme["snippets"].as_array().unwrap();
    assert_eq!(found.len(), 2, "acme sees its own two snippets only");
    assert_eq!(
        found[0]["description"], "retry with exponential backoff",
        "the closest first"
    );
    assert!(found[0]["similarity"].as_f64().unwrap() > found[1]["similarity"].as_f64().unwrap());
    assert!(
        found
            .iter()
            .all(|s| s["description"] != "retry a flaky call with backoff"),
        "globex's snippet is invisible to acme"
    );
    let globex = call(
        &c,
        "search_similar",
        json!({"client_id": "globex", "query": "csv orders"}),
    )
    .await
    .unwrap();
    assert_eq!(globex["snippets"].as_array().unwrap().len(), 1);
    assert_eq!(
        globex["snippets"][0]["description"],
        "retry a flaky call with backoff"
    );
    let nobody = call(
        &c,
        "search_similar",
        json!({"client_id": "initech", "query": "retry"}),
    )
    .await
    .unwrap();
    assert_eq!(nobody["snippets"], json!([]));
    let pattern = call(
        &c,
        "get_pattern",
        json!({"client_id": "acme", "name": "Backoff"}),
    )
    .await
    .unwrap();
    assert_eq!(pattern["snippets"].as_array().unwrap().len(), 1);
    assert!(
        tool_error(
            call(
                &c,
                "search_similar",
                json!({"client_id": " ", "query": "x"})
            )
            .await
        )
        .contains("client_id is required")
    );
    assert!(
        tool_error(
            call(
                &c,
                "store_snippet",
                json!({"client_id": "acme", "language": "python", "description": "d", "code": " "})
            )
            .await
        )
        .contains("empty")
    );
    running.stop().await;

    // Restarted on the same store, the snippets are still there (SQLite, not memory).
    let server = vector_code::VectorCode::open(dir.path(), vector_code::Embedder::Local).unwrap();
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    let again = call(
        &c,
        "search_similar",
        json!({"client_id": "acme", "query": "orders csv"}),
    )
    .await
    .unwrap();
    assert_eq!(again["snippets"][0]["description"], "parse a csv of orders");
    running.stop().await;
}

#[tokio::test]
async fn vector_code_can_embed_through_an_openai_compatible_endpoint() {
    use axum::{Json, Router, routing::post};
    // A stand-in /v1/embeddings: a vector from the text's length and first letter.
    let app = Router::new().route(
        "/v1/embeddings",
        post(|Json(body): Json<Value>| async move {
            let text = body["input"][0].as_str().unwrap_or("").to_string();
            let first = text.chars().next().map(|c| c as u32 as f64).unwrap_or(0.0);
            Json(json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [first, text.len() as f64, 1.0]}], "model": "stand-in"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let embedder = vector_code::Embedder::Remote {
        base_url: format!("http://{addr}/v1"),
        model: "stand-in".into(),
        api_key: None,
    };
    let server = vector_code::VectorCode::open(dir.path(), embedder).unwrap();
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .unwrap();
    let c = client_for(&running.url).await;
    call(
        &c,
        "store_snippet",
        json!({"client_id": "acme", "language": "python", "description": "a", "code": "print(1)"}),
    )
    .await
    .unwrap();
    let r = call(
        &c,
        "search_similar",
        json!({"client_id": "acme", "query": "anything"}),
    )
    .await
    .unwrap();
    assert_eq!(r["snippets"].as_array().unwrap().len(), 1);
    let conn = rusqlite::Connection::open(dir.path().join("ecca.db")).unwrap();
    let embedder: String = conn
        .query_row("SELECT embedder FROM snippets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(embedder, "openai:stand-in");
    running.stop().await;
}
