//! Delivery benchmark: from `ecca approve T` to the pull request opened, against a local
//! git remote that takes the client's token over HTTP Basic auth and a GitHub stand-in.
//!
//! Run with `cargo bench --bench delivery`. Each round takes a fresh task to the approval
//! gate with a dry run (untimed; its checks run in the Docker sandbox, so without Docker the
//! benchmark says so and exits 0), then times `ecca approve` wall-clock: process start,
//! supervisor start, commit, push through client-github, and the pull request. The
//! in-process part is read from the task's audit rows: from the first operation of the
//! delivery to the end of the last.

#[path = "../tests/common/fixture_repo.rs"]
#[allow(dead_code)]
mod fixture_repo;
#[path = "../tests/common/git_remote.rs"]
#[allow(dead_code)]
mod git_remote;
#[path = "../tests/common/github_api.rs"]
#[allow(dead_code)]
mod github_api;

use git_remote::{GitRemote, SERVED_SLUG};
use github_api::GithubApi;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

const ROUNDS: usize = 7;
const TOKEN: &str = "ghp_bench_token_for_the_local_remote";

fn ecca(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecca"));
    cmd.arg("--data-dir").arg(home).args(args);
    for k in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "ECCA_CONFIG",
        "ECCA_HOME",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the ecca binary runs");
    assert!(
        out.status.success(),
        "ecca {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn docker_ready() -> bool {
    Command::new("docker")
        .args(["image", "inspect", "ecca-sandbox:latest"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Milliseconds from the first audit row at or after `since` to the end of the last one.
fn delivery_ms(home: &Path, task: &str, since_ms: i64) -> Option<f64> {
    let conn = rusqlite::Connection::open_with_flags(
        home.join("ecca.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    conn.query_row(
        "SELECT MAX(at + duration_ms) - MIN(at) FROM audit WHERE task_id = ?1 AND at >= ?2",
        rusqlite::params![task, since_ms],
        |r| r.get::<_, Option<i64>>(0),
    )
    .ok()
    .flatten()
    .map(|ms| ms as f64)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn line(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{what}: median {:.0} ms, min {:.0} ms, max {:.0} ms ({} runs)",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
}

fn main() {
    if !docker_ready() {
        println!("delivery: skipped: no Docker (the checks before approval run in the sandbox)");
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let bare = fixture_repo::python_project(dir.path(), false);
    let (remote, api) = rt.block_on(async {
        let remote = GitRemote::start(&bare, TOKEN).await;
        let api = GithubApi::start(TOKEN, "acme", "site")
            .await
            .with_repo(&bare);
        (remote, api)
    });
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("the data dir");
    std::fs::write(
        home.join("config.toml"),
        format!("[clients.acme]\nrepo_slug = \"{SERVED_SLUG}\"\n"),
    )
    .expect("the config");
    let github = [("ECCA_GITHUB_API", api.base_url.as_str())];
    ecca(
        &home,
        &[
            "clients",
            "add",
            "acme",
            "--name",
            "Acme",
            "--budget-usd",
            "50",
        ],
        &[],
    );
    ecca(
        &home,
        &[
            "clients",
            "token",
            "acme",
            "--from-env",
            "ACME_TOKEN",
            "--repo",
            &remote.url,
        ],
        &[("ACME_TOKEN", TOKEN)],
    );

    let mut wall = Vec::new();
    let mut in_process = Vec::new();
    for round in 1..=ROUNDS {
        let task = format!("T-{round:04}");
        ecca(
            &home,
            &[
                "run",
                "--client",
                "acme",
                "--task",
                &format!("Add shout helper number {round} to greet"),
                "--dry-run",
                "--json",
            ],
            &github,
        );
        let since = now_ms();
        let started = Instant::now();
        ecca(&home, &["approve", &task], &github);
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            api.pull_count(),
            round,
            "round {round} opened no pull request: {:?}",
            api.rejected
        );
        if let Some(ms) = delivery_ms(&home, &task, since) {
            in_process.push(ms);
        }
    }
    line("approve to pull request, `ecca approve` wall-clock", wall);
    if in_process.len() == ROUNDS {
        line(
            "approve to pull request, delivery inside the process (audit rows)",
            in_process,
        );
    }
}
