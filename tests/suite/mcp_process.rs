//! MCP servers as real processes: client-github with a client's token, and the client
//! living through a server that is killed and restarted.

use crate::common;

use axum::http::HeaderMap;
use axum::{Json, Router, routing::post};
use ecca::mcp::client::McpClients;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "ghp_TestToken0123456789abcdefXYZ9876";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `ecca mcp serve …` and returns it with the URL it printed.
fn serve(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(common::ecca_bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["mcp", "serve"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = common::listening_url(&mut child);
    (child, url)
}

fn stop(child: Child) -> String {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_github_commits_pushes_and_opens_a_pull_request_without_showing_its_token() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    // The client's repository: a local bare repository with one commit on main.
    let remote = d.join("site.git");
    git(
        d,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            remote.to_str().unwrap(),
        ],
    );
    let seed = d.join("seed");
    git(
        d,
        &[
            "clone",
            "--quiet",
            remote.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
    );
    std::fs::write(seed.join("README.md"), "# site\n").unwrap();
    git(
        &seed,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "add",
            "README.md",
        ],
    );
    git(
        &seed,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "first",
        ],
    );
    git(&seed, &["push", "--quiet", "origin", "HEAD:main"]);

    // GitHub's pull-request endpoint, stood in for on loopback.
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/repos/acme/site/pulls",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                record.lock().unwrap().push((auth, body.clone()));
                if body["title"] == "refused" {
                    return (
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        Json(json!({"message": format!("Validation Failed for {TOKEN}")})),
                    );
                }
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({"number": 7, "html_url": "https://github.com/acme/site/pull/7"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let ecca = |args: &[&str]| {
        let out = Command::new(common::ecca_bin())
            .arg("--data-dir")
            .arg(d)
            .args(args)
            .env("GH_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ecca(&[
        "clients",
        "add",
        "acme",
        "--name",
        "Acme",
        "--budget-usd",
        "100",
    ]);
    let stored = ecca(&[
        "clients",
        "token",
        "acme",
        "--from-env",
        "GH_TOKEN",
        "--repo",
        remote.to_str().unwrap(),
    ]);
    assert!(
        stored.contains("****9876") && !stored.contains(TOKEN),
        "{stored}"
    );
    let db = std::fs::read(d.join("ecca.db")).unwrap();
    assert!(
        !db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token is stored encrypted"
    );

    let (child, url) = serve(
        d,
        &[
            "client-github",
            "--client",
            "acme",
            "--listen",
            "127.0.0.1:0",
            "--repo-slug",
            "acme/site",
            "--github-api",
            &api,
        ],
        &[],
    );
    let c = McpClients::new([("gh".to_string(), url)], Duration::from_secs(60));
    let mut tools: Vec<String> = c
        .tools("gh")
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(tools, ["clone", "commit", "open_pr", "push"]);

    let mut results = Vec::new();
    results.push(c.call("gh", "clone", json!({})).await.unwrap());
    assert_eq!(results[0]["branch"], "main");
    let files = json!([{"path": "app/hello.py", "content": "print('hello')\n"}]);
    results.push(
        c.call(
            "gh",
            "commit",
            json!({"branch": "agt/T-0001", "message": "T-0001: hello", "files": files}),
        )
        .await
        .unwrap(),
    );
    results.push(
        c.call("gh", "push", json!({"branch": "agt/T-0001"}))
            .await
            .unwrap(),
    );
    results.push(
        c.call(
            "gh",
            "open_pr",
            json!({"title": "T-0001: hello", "body": "by ecca", "head": "agt/T-0001"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        results[3],
        json!({"number": 7, "url": "https://github.com/acme/site/pull/7"})
    );
    let refused = c
        .call(
            "gh",
            "open_pr",
            json!({"title": "refused", "head": "agt/T-0001"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("HTTP 422") && refused.contains("****9876"),
        "{refused}"
    );
    let escape = c
        .call(
            "gh",
            "commit",
            json!({"branch": "b", "message": "m", "files": [{"path": "../../x", "content": ""}]}),
        )
        .await
        .unwrap_err();
    assert!(
        escape.to_string().contains("leaves the project root"),
        "{escape}"
    );
    let bad_branch = c
        .call(
            "gh",
            "commit",
            json!({"branch": "bad..name", "message": "m", "files": files}),
        )
        .await
        .unwrap_err();
    assert!(bad_branch.to_string().contains("not a valid branch name"));

    // The work is on the remote, on its own branch.
    assert_eq!(
        git(&remote, &["show", "agt/T-0001:app/hello.py"]),
        "print('hello')\n"
    );
    assert_eq!(
        git(&remote, &["log", "-1", "--format=%s", "agt/T-0001"]).trim(),
        "T-0001: hello"
    );
    let calls = seen.lock().unwrap().clone();
    assert_eq!(
        calls[0].0,
        format!("Bearer {TOKEN}"),
        "GitHub got the token"
    );
    assert_eq!(calls[0].1["head"], "agt/T-0001");
    assert_eq!(calls[0].1["base"], "main");

    // Nowhere else: not in results, errors, the server's output or its logs.
    let stderr = stop(child);
    let mut everything = format!("{results:?}{refused}{escape}{bad_branch}{stderr}");
    for entry in std::fs::read_dir(d.join("logs")).unwrap() {
        everything.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(!everything.contains(TOKEN), "the token leaked");
    assert!(
        !everything.contains(&TOKEN[4..20]),
        "part of the token leaked"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_survives_a_server_killed_and_restarted_mid_session() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (mut first, url) = serve(data.path(), &["linter", "--listen", &listen], &[]);
    let c = McpClients::new([("linter".to_string(), url)], Duration::from_secs(30));
    let args = json!({"code": "import os\n"});
    let r = c.call("linter", "lint_python", args.clone()).await.unwrap();
    assert_eq!(r["diagnostics"][0]["code"], "F401");

    first.kill().unwrap(); // SIGKILL: the session is gone with the process
    first.wait().unwrap();
    let (second, _) = serve(data.path(), &["linter", "--listen", &listen], &[]);
    let r = c.call("linter", "lint_python", args).await.unwrap();
    assert_eq!(
        r["diagnostics"][0]["code"], "F401",
        "the same client, reconnected"
    );
    let health = c.health().await;
    assert_eq!(
        (health[0].connected, health[0].calls, health[0].failures),
        (true, 2, 0)
    );
    assert!(health[0].latency_p50_ms.is_some());
    stop(second);

    // With the server gone for good, the call fails in a sentence that names it.
    let err = c
        .call("linter", "lint_python", json!({"code": "x = 1\n"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "the linter server at http://127.0.0.1:{port}/mcp did not answer"
        )),
        "{err}"
    );
}
