//! MCP tool benchmarks, each through ecca's real client over loopback HTTP.
//!
//! Run with `cargo bench --bench mcp` (needs Docker and `ecca images build --only sandbox`).
//! - run_python "hello": tool call to result, against `docker run --rm` of the same image
//!   by the Docker CLI in the same run (same limits), as a ratio;
//! - search_similar over 10,000 snippets of one client;
//! - read_file of a small file.

use ecca::containers::images::SANDBOX_IMAGE;
use ecca::mcp::client::McpClients;
use ecca::mcp::servers::{
    self, code_context::CodeContext, code_execution::CodeExecution, confine::Root, vector_code,
};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const ANY: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn sandbox(rounds: usize) {
    let server = CodeExecution::new(None);
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .expect("serve");
    let c = McpClients::new(
        [("x".to_string(), running.url.clone())],
        Duration::from_secs(60),
    );
    let args = json!({"code": "print('hello')"});
    let cli = [
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "256m",
        "--memory-swap",
        "256m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "64",
        "--read-only",
        "--tmpfs",
        "/scratch:rw,exec,size=64m",
        "--user",
        "65534:65534",
        "--log-driver",
        "none",
        SANDBOX_IMAGE,
        "/usr/bin/python3",
        "-c",
        "print('hello')",
    ];
    // Warm up both paths (image layers, connection).
    c.call("x", "run_python", args.clone())
        .await
        .expect("warm-up run_python");
    std::process::Command::new("docker")
        .args(cli)
        .output()
        .expect("docker CLI");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Interleaved, so drift on a noisy machine hits both alike.
        let t = Instant::now();
        let r = c
            .call("x", "run_python", args.clone())
            .await
            .expect("run_python");
        ours.push(ms(t.elapsed()));
        assert_eq!(r["stdout"], "hello\n");
        let t = Instant::now();
        let out = std::process::Command::new("docker")
            .args(cli)
            .output()
            .expect("docker CLI");
        theirs.push(ms(t.elapsed()));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    }
    let (a, b) = (percentile(ours, 0.5), percentile(theirs, 0.5));
    println!("| run_python \"hello\", tool call to result (median of {rounds}) | {a:.1} ms |");
    println!(
        "| docker run --rm, same image and limits, by the Docker CLI (median of {rounds}) | {b:.1} ms |"
    );
    println!("| ecca / docker CLI | {:.2} |", a / b);
    running.stop().await;
}

async fn search(rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        vector_code::VectorCode::open(dir.path(), vector_code::Embedder::Local).expect("open");
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .expect("serve");
    let c = McpClients::new(
        [("v".to_string(), running.url.clone())],
        Duration::from_secs(60),
    );
    let verbs = [
        "parse", "retry", "render", "fetch", "store", "validate", "merge", "sort", "encode",
        "schedule",
    ];
    let nouns = [
        "orders", "invoice", "user", "chart", "token", "webhook", "csv", "image", "payment",
        "email",
    ];
    let started = Instant::now();
    for i in 0..10_000usize {
        let (v, n) = (verbs[i % 10], nouns[(i / 10) % 10]);
        let code = format!(
            "def {v}_{n}_{i}(data):\n    # {v} the {n}\n    return [x for x in data if x]\n"
        );
        c.call("v", "store_snippet", json!({"client_id": "acme", "language": "python", "description": format!("{v} {n} variant {i}"), "code": code, "quality": 8}))
            .await
            .expect("store");
    }
    let filled = started.elapsed();
    let mut times = Vec::new();
    for i in 0..rounds {
        let q = format!("{} the {} records", verbs[i % 10], nouns[(i * 3) % 10]);
        let t = Instant::now();
        let r = c
            .call(
                "v",
                "search_similar",
                json!({"client_id": "acme", "query": q, "limit": 3}),
            )
            .await
            .expect("search");
        times.push(ms(t.elapsed()));
        assert_eq!(r["snippets"].as_array().map(|a| a.len()), Some(3));
    }
    println!(
        "| search_similar over 10,000 snippets, p50 / p99 of {rounds} | {:.2} ms / {:.2} ms |",
        percentile(times.clone(), 0.5),
        percentile(times, 0.99)
    );
    println!(
        "| (storing the 10,000 snippets took {:.1} s) | |",
        filled.as_secs_f64()
    );
    running.stop().await;
}

async fn read_file(rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("app.py"),
        "def main():\n    print('hello')\n".repeat(20),
    )
    .expect("write");
    let server = CodeContext::new(Root::new(dir.path()).expect("root"));
    let running = servers::serve(SocketAddr::from(ANY), move || server.clone())
        .await
        .expect("serve");
    let c = McpClients::new(
        [("r".to_string(), running.url.clone())],
        Duration::from_secs(60),
    );
    c.call("r", "read_file", json!({"path": "app.py"}))
        .await
        .expect("warm-up");
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        c.call("r", "read_file", json!({"path": "app.py"}))
            .await
            .expect("read");
        times.push(ms(t.elapsed()));
    }
    println!(
        "| read_file round trip over loopback, p50 / p99 of {rounds} | {:.2} ms / {:.2} ms |",
        percentile(times.clone(), 0.5),
        percentile(times, 0.99)
    );
    running.stop().await;
}

fn main() {
    ecca::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("| benchmark | result |");
    println!("|---|---|");
    rt.block_on(async {
        if wants("read_file") {
            read_file(2_000).await;
        }
        if wants("search") {
            search(500).await;
        }
        if wants("sandbox") {
            sandbox(21).await;
        }
    });
}
