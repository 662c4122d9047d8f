//! Hostile code in the code-execution sandbox, through the real MCP server and client.
//! These tests need Docker and the ecca-sandbox image; without them they fail and say so.

mod common;

use ecca::mcp::client::McpClients;
use ecca::mcp::servers::{self, code_execution::CodeExecution};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn sandbox() -> (servers::Running, McpClients) {
    common::require_docker_and_sandbox();
    let server = CodeExecution::new(None);
    let running = servers::serve(SocketAddr::from(([127, 0, 0, 1], 0)), move || {
        server.clone()
    })
    .await
    .unwrap();
    let clients = McpClients::new(
        [("x".to_string(), running.url.clone())],
        Duration::from_secs(120),
    );
    (running, clients)
}

async fn run(c: &McpClients, tool: &str, args: Value) -> Value {
    c.call("x", tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_programs_run_in_each_language() {
    let (running, c) = sandbox().await;
    let py = run(&c, "run_python", json!({"code": "from helper import name\nprint('hello', name())", "files": [{"path": "helper.py", "content": "def name():\n    return 'ecca'\n"}]})).await;
    assert_eq!(
        (
            py["stdout"].as_str(),
            py["exit_code"].as_i64(),
            py["passed"].as_bool()
        ),
        (Some("hello ecca\n"), Some(0), Some(true)),
        "{py}"
    );
    let node = run(
        &c,
        "run_node",
        json!({"code": "console.log([1,2,3].map(x => x * 2).join(','))"}),
    )
    .await;
    assert_eq!(node["stdout"], "2,4,6\n", "{node}");
    let bash = run(
        &c,
        "run_bash",
        json!({"code": "echo \"$(id -u) $(pwd)\"; exit 3"}),
    )
    .await;
    assert_eq!(
        (
            bash["stdout"].as_str(),
            bash["exit_code"].as_i64(),
            bash["passed"].as_bool()
        ),
        (Some("65534 /scratch\n"), Some(3), Some(false)),
        "runs as nobody in /scratch: {bash}"
    );
    let bad = c
        .call(
            "x",
            "run_python",
            json!({"code": "1", "files": [{"path": "../../etc/x", "content": ""}]}),
        )
        .await;
    assert!(
        format!("{bad:?}").contains("must be relative and stay inside the scratch directory"),
        "{bad:?}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn there_is_no_network_inside() {
    let (running, c) = sandbox().await;
    // A listener on the host's loopback: the sandbox must not reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let code = format!(
        "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('refused', type(e).__name__)\n"
    );
    let r = run(&c, "run_python", json!({"code": code})).await;
    let out = r["stdout"].as_str().unwrap();
    assert!(
        out.starts_with("['lo']\n"),
        "only a loopback interface: {r}"
    );
    assert!(out.contains("refused ConnectionRefusedError"), "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the host's listener"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_an_endless_loop_and_a_huge_allocation_are_contained() {
    let (running, c) = sandbox().await;
    let started = Instant::now();
    // The parent stays alive, so the bomb keeps forking until the limits stop it.
    let bomb = run(
        &c,
        "run_bash",
        json!({"code": ":(){ :|:& };:\nsleep 30\n", "timeout_secs": 5}),
    )
    .await;
    assert_eq!(bomb["passed"], false, "{bomb}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "contained quickly: {:?}",
        started.elapsed()
    );
    assert!(
        bomb["timed_out"] == true
            || bomb["stderr"]
                .as_str()
                .unwrap()
                .contains("Resource temporarily unavailable"),
        "the process limit stopped it: {bomb}"
    );

    let started = Instant::now();
    let spin = run(
        &c,
        "run_python",
        json!({"code": "while True:\n    pass\n", "timeout_secs": 3}),
    )
    .await;
    assert_eq!(
        (spin["timed_out"].as_bool(), spin["exit_code"].as_i64()),
        (Some(true), None),
        "{spin}"
    );
    assert!(
        spin["stderr"]
            .as_str()
            .unwrap()
            .contains("killed by ecca after 3 s")
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );

    let hog = run(
        &c,
        "run_python",
        json!({"code": "x = bytearray(1 << 30)\nprint('allocated')\n"}),
    )
    .await;
    assert_eq!(hog["passed"], false, "{hog}");
    assert!(!hog["stdout"].as_str().unwrap().contains("allocated"));
    assert!(
        hog["oom_killed"] == true || hog["stderr"].as_str().unwrap().contains("MemoryError"),
        "256 MiB cap: {hog}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_cut_and_the_root_is_read_only() {
    let (running, c) = sandbox().await;
    let flood = run(&c, "run_python", json!({"code": "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n"})).await;
    assert_eq!(
        (
            flood["output_truncated"].as_bool(),
            flood["passed"].as_bool()
        ),
        (Some(true), Some(false)),
        "{}",
        &flood.to_string()[..200]
    );
    let out = flood["stdout"].as_str().unwrap();
    assert!(
        out.len() < 1_100_000,
        "kept at most about 1 MiB, got {}",
        out.len()
    );
    assert!(
        out.ends_with("[output cut by ecca at 1024 KiB: the program wrote more and was stopped]\n")
    );

    let etc = run(
        &c,
        "run_python",
        json!({"code": "open('/etc/evil', 'w').write('x')"}),
    )
    .await;
    assert_eq!(etc["passed"], false);
    let err = etc["stderr"].as_str().unwrap();
    assert!(
        err.contains("Read-only file system") || err.contains("Permission denied"),
        "{etc}"
    );
    let scratch = run(
        &c,
        "run_bash",
        json!({"code": "echo ok > /scratch/f && cat /scratch/f"}),
    )
    .await;
    assert_eq!(
        scratch["stdout"], "ok\n",
        "the scratch dir is writable: {scratch}"
    );
    running.stop().await;

    // The containers these runs used are removed.
    for r in [&flood, &etc, &scratch] {
        let id = r["container"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 12);
        let mut gone = false;
        for _ in 0..50 {
            let out = std::process::Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("id={id}")])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(gone, "sandbox container {id} was not removed");
    }
}
