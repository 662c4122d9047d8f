//! A real ecca process killed with SIGKILL mid-run: after restart the run is interrupted,
//! `ecca resume` finishes it, and every cost row written before the kill is there once.

use crate::common;

use ecca::config::Config;
use ecca::domain::TaskStatus;
use ecca::supervisor::{Supervisor, SupervisorOptions};
use rusqlite::{Connection, OpenFlags};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
struct CostRow {
    id: i64,
    purpose: String,
    cost: i64,
    tokens: i64,
}

fn cost_rows(db: &std::path::Path) -> Vec<CostRow> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, purpose, cost_micros, input_tokens + output_tokens FROM cost_log ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(CostRow {
            id: r.get(0)?,
            purpose: r.get(1)?,
            cost: r.get(2)?,
            tokens: r.get(3)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_resume_loses_nothing_and_counts_nothing_twice() {
    // The call count below assumes the run passes its checks the first time (ruff's lint,
    // the tests in the sandbox); without them it iterates and the count means nothing, so
    // say what is missing instead.
    common::require_docker_and_sandbox();
    assert!(
        Command::new("ruff")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs ruff on PATH for the run's lint check; run scripts/test.sh, which installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    // Each simulated call takes 1.5 s: the kill comes right after the second call is
    // recorded, so it lands mid-run (the third call cannot finish in between, however
    // loaded the machine is).
    std::fs::write(
        dir.path().join("config.toml"),
        "[offline]\nlatency_ms = 1500\n",
    )
    .unwrap();
    let mut child = Command::new(common::ecca_bin())
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "run",
            "--task",
            "Write a Python hello world",
            "--dry-run",
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.path().join("ecca.db");
    // The child migrates the store after it starts: count rows only once cost_log exists.
    common::wait_until("two recorded calls", 120, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ecca exited before it could be killed"
        );
        common::read_store(&db, "cost_log", "SELECT COUNT(*) FROM cost_log", |r| {
            r.get::<_, i64>(0)
        })
        .is_some_and(|n| n >= 2)
    });
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    let before = cost_rows(&db);
    assert!(
        before.len() >= 2 && before.len() < 4,
        "killed mid-run, after {} calls",
        before.len()
    );

    // Restart: the run that was in flight is found interrupted.
    {
        let config = Config::load(&dir.path().join("config.toml")).unwrap();
        let sup = Supervisor::start(SupervisorOptions::new(dir.path().to_path_buf(), config))
            .await
            .unwrap();
        let task = sup.store().task("T-0001").unwrap().unwrap();
        assert_eq!(task.status, TaskStatus::Interrupted);
        assert!(
            task.status_reason
                .as_deref()
                .unwrap()
                .contains("ecca resume T-0001"),
            "{:?}",
            task.status_reason
        );
        let run = sup.store().latest_run("T-0001").unwrap().unwrap();
        assert_eq!(run.status, TaskStatus::Interrupted);
    }

    let out = Command::new(common::ecca_bin())
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "resume",
            "T-0001",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "resume failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("T-0001 awaiting_approval"), "{stdout}");

    let after = cost_rows(&db);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every row written before the kill is there, unchanged"
    );
    let mut purposes: Vec<&str> = after.iter().map(|r| r.purpose.as_str()).collect();
    purposes.sort_unstable();
    assert_eq!(
        purposes,
        ["evaluate", "plan", "tests", "write"],
        "each call recorded exactly once"
    );

    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (task_cost, task_tokens, calls): (i64, i64, i64) = conn
        .query_row(
            "SELECT cost_micros, tokens_used, model_calls FROM code_tasks WHERE id = 'T-0001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(task_cost, after.iter().map(|r| r.cost).sum::<i64>());
    assert_eq!(task_tokens, after.iter().map(|r| r.tokens).sum::<i64>());
    assert_eq!(calls, 4);
    let resumed: i64 = conn
        .query_row("SELECT COUNT(*) FROM run_events WHERE kind = 'resumed' AND payload LIKE '%interrupted%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(resumed, 1);
}
