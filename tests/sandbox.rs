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

// ---- Containers never outlive their deadline or their caller ----

/// A file name no other test (or test binary) uses, so the container running it can be
/// told apart from every other sandbox on the engine by its command line.
fn unique_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}_{}_{nanos}.py", std::process::id())
}

/// Sandbox containers (running or not) whose command line or environment mentions
/// `marker`.
fn sandboxes_running(marker: &str) -> Vec<String> {
    let ids = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            "label=ecca.role=sandbox",
        ])
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
    if ids.trim().is_empty() {
        return Vec::new();
    }
    // A container may go between the listing and the inspection; inspect reports the rest.
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Cmd}} {{json .Config.Env}}",
        ])
        .args(ids.split_whitespace())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// Polls `check` every 100 ms until it holds or `limit` passes; says whether it held.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// A server process, killed if a failing test leaves it running.
struct ServerProcess(std::process::Child);

impl std::ops::Deref for ServerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `ecca mcp serve code-execution` as a real process, with the URL it printed.
fn serve_process(data: &std::path::Path) -> (ServerProcess, String) {
    serve_process_with(data, &[])
}

fn serve_process_with(data: &std::path::Path, env: &[(&str, &str)]) -> (ServerProcess, String) {
    let mut child = std::process::Command::new(common::ecca_bin())
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data)
        .args(["mcp", "serve", "code-execution", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = common::listening_url(&mut child);
    (ServerProcess(child), url)
}

fn client_for(url: &str, timeout: Duration) -> McpClients {
    McpClients::new([("x".to_string(), url.to_string())], timeout)
}

/// Starts an endless loop in the sandbox in the background and waits until its container
/// exists; returns the call's task and the container's id.
async fn start_endless_loop(
    c: McpClients,
    timeout_secs: u64,
) -> (
    tokio::task::JoinHandle<Result<Value, ecca::mcp::client::CallError>>,
    String,
) {
    let name = unique_name("spin");
    let args =
        json!({"code": "while True:\n    pass\n", "filename": name, "timeout_secs": timeout_secs});
    let call = tokio::spawn(async move { c.call("x", "run_python", args).await });
    let mut id = Vec::new();
    let started = eventually(Duration::from_secs(60), || {
        id = sandboxes_running(&name);
        !id.is_empty()
    })
    .await;
    assert!(started, "no sandbox container running {name} appeared");
    (call, id.remove(0))
}

fn container_exists(id: &str) -> bool {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--no-trunc", "--filter", &format!("id={id}")])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_ends_at_its_deadline_even_when_its_server_is_killed() {
    common::require_docker_and_sandbox();
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = serve_process(data.path());
    let (call, id) = start_endless_loop(client_for(&url, Duration::from_secs(120)), 3).await;
    // SIGKILL: the server gets no chance to clean up, so only the container's own deadline
    // and the engine's auto-removal are left.
    server.kill().unwrap();
    server.wait().unwrap();
    let killed = Instant::now();
    let gone = eventually(Duration::from_secs(30), || !container_exists(&id)).await;
    assert!(
        gone,
        "sandbox {id} (3 s timeout) still exists {:?} after its server was SIGKILLed",
        killed.elapsed()
    );
    // The client would keep trying to reach the dead server until its own timeout.
    call.abort();
}

/// Runs a labelled container with the Docker CLI (not through ecca) and returns its id.
fn docker_run(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(["run", "--log-driver", "none", "--network", "none"])
        .args([
            "--label",
            "ecca.managed=true",
            "--label",
            "ecca.role=sandbox",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An exited sandbox, as a process killed before it could remove it leaves behind.
fn exited_leftover() -> String {
    let id = docker_run(&["-d", "ecca-sandbox:latest", "/usr/bin/true"]);
    let out = std::process::Command::new("docker")
        .args(["wait", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_start_sweeps_leftover_sandboxes_but_not_live_ones() {
    common::require_docker_and_sandbox();
    let now = chrono::Utc::now().timestamp();
    let exited = exited_leftover();
    let overdue = docker_run(&[
        "-d",
        "--label",
        &format!("ecca.deadline={}", now - 60),
        "ecca-sandbox:latest",
        "/usr/bin/sleep",
        "600",
    ]);
    // Another process's run, well within its deadline: a sweep must leave it alone.
    let live = docker_run(&[
        "-d",
        "--label",
        &format!("ecca.deadline={}", now + 600),
        "ecca-sandbox:latest",
        "/usr/bin/sleep",
        "600",
    ]);
    let data = tempfile::tempdir().unwrap();
    let (mut server, _url) = serve_process(data.path());
    // The sweep is done before the server says it listens.
    let swept = !container_exists(&exited) && !container_exists(&overdue);
    let live_kept = container_exists(&live);
    server.kill().unwrap();
    server.wait().unwrap();

    // The in-process servers of `ecca run` and the console sweep as well.
    let exited_again = exited_leftover();
    let embedded = ecca::mcp::embedded::EmbeddedServers::start(data.path())
        .await
        .unwrap();
    let swept_again = !container_exists(&exited_again);
    embedded.stop().await;
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &live, &overdue, &exited, &exited_again])
        .output();
    assert!(
        swept,
        "the server's start removed the exited and the overdue sandbox"
    );
    assert!(live_kept, "a sandbox within its deadline was left running");
    assert!(
        swept_again,
        "the embedded servers' start removed the exited sandbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_600_kib_program_runs_and_over_1_mib_is_refused() {
    let (running, c) = sandbox().await;
    let mut code = String::from("import os\nprint(os.path.getsize(__file__))\n");
    while code.len() < 600 * 1024 {
        code.push_str("# padding to make the program large, as generated code can be\n");
    }
    let r = run(&c, "run_python", json!({"code": code})).await;
    assert_eq!(
        (r["stdout"].as_str(), r["passed"].as_bool()),
        (Some(format!("{}\n", code.len()).as_str()), Some(true)),
        "{}",
        r["stderr"]
    );
    let data = "y".repeat(700 * 1024);
    let r = run(
        &c,
        "run_bash",
        json!({"code": "wc -c < data.txt", "files": [{"path": "data.txt", "content": data}]}),
    )
    .await;
    assert_eq!(r["stdout"], format!("{}\n", data.len()), "{r}");

    let too_big = "#".repeat(1024 * 1024 + 1);
    let refused = c
        .call("x", "run_python", json!({"code": too_big}))
        .await
        .expect_err("over the cap is refused");
    let message = refused.to_string();
    assert!(
        message.contains("1 MiB") && message.contains("1048584 bytes"),
        "{message}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_is_a_tool_error_not_a_failed_program() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = serve_process_with(
        data.path(),
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let c = client_for(&url, Duration::from_secs(60));
    let r = c.call("x", "run_python", json!({"code": "print(1)"})).await;
    match r {
        Err(ecca::mcp::client::CallError::Tool(m)) => {
            assert!(m.contains("no Docker engine answers"), "{m}")
        }
        other => panic!("expected a tool error, got {other:?}"),
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_call_answers_the_call_and_removes_its_container() {
    common::require_docker_and_sandbox();
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = serve_process(data.path());
    let (call, id) = start_endless_loop(client_for(&url, Duration::from_secs(120)), 120).await;
    unsafe {
        libc::kill(server.id() as i32, libc::SIGTERM);
    }
    let answer = match tokio::time::timeout(Duration::from_secs(60), call).await {
        Ok(answer) => answer.unwrap(),
        Err(_) => {
            let mut logs = String::new();
            for f in std::fs::read_dir(data.path().join("logs")).unwrap() {
                logs += &std::fs::read_to_string(f.unwrap().path()).unwrap();
            }
            panic!("the in-flight call is not answered; the server's log:\n{logs}");
        }
    };
    match answer {
        Err(ecca::mcp::client::CallError::Tool(m)) => {
            assert!(m.contains("shutting down"), "{m}")
        }
        other => panic!("expected a tool error saying the server stops, got {other:?}"),
    }
    let exited = eventually(Duration::from_secs(60), || {
        server.try_wait().unwrap().is_some()
    })
    .await;
    assert!(exited, "the server exits after SIGTERM");
    assert!(server.wait().unwrap().success());
    assert!(
        !container_exists(&id),
        "the server removed sandbox {id} before exiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stops_its_container() {
    common::require_docker_and_sandbox();
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = serve_process(data.path());
    let c = client_for(&url, Duration::from_secs(120));
    let (call, id) = start_endless_loop(c.clone(), 120).await;
    // Dropping the call makes the client send notifications/cancelled.
    call.abort();
    let gone = eventually(Duration::from_secs(30), || !container_exists(&id)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        gone,
        "sandbox {id} (120 s timeout) was stopped when its call was cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_cannot_stop_the_sandboxs_own_deadline() {
    let (running, c) = sandbox().await;
    // PID 1 keeps the deadline: signals from inside the container do not reach it, and its
    // memory cannot be read or written by the program (it is not dumpable).
    let code = "import os, signal\nfor s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGSTOP):\n    os.kill(1, s)\ntry:\n    open('/proc/1/mem', 'rb')\n    print('mem open')\nexcept OSError as e:\n    print('mem refused', type(e).__name__)\nprint('done')\n";
    let r = run(&c, "run_python", json!({"code": code})).await;
    assert_eq!(
        (
            r["stdout"].as_str(),
            r["exit_code"].as_i64(),
            r["stderr"].as_str()
        ),
        (
            Some("mem refused PermissionError\ndone\n"),
            Some(0),
            Some("")
        ),
        "PID 1 survived and reported: {r}"
    );
    running.stop().await;
}
