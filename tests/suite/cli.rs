//! The headless command line, run as a real process.

use crate::common;

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::process::{Command, Output};

fn ecca(dir: &Path, args: &[&str]) -> Output {
    ecca_env(dir, args, &[])
}

fn ecca_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::ecca_bin());
    cmd.arg("--data-dir").arg(dir).args(args);
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ECCA_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every row of every table, for comparing the store before and after.
fn snapshot(dir: &Path) -> Vec<String> {
    let db = dir.join("ecca.db");
    if !db.exists() {
        return vec![];
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(format!("{t}: {}", cells.join(" | ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// Asserts a one-sentence error, a non-zero exit and an untouched store.
fn assert_refused(dir: &Path, out: &Output, must_contain: &str, before: &[String]) {
    assert!(!out.status.success(), "should fail: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(must_contain),
        "{err} should mention {must_contain}"
    );
    assert_eq!(snapshot(dir), before, "the store changed");
}

#[test]
fn bad_input_is_one_sentence_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ecca(
        d,
        &[
            "clients",
            "add",
            "acme",
            "--name",
            "Acme Ltd",
            "--budget-usd",
            "50",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ecca(
        d,
        &["run", "--task", "seed", "--client", "acme", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = snapshot(d);
    assert!(!before.is_empty());

    let out = ecca(
        d,
        &[
            "run",
            "--task",
            "Write a hello world",
            "--client",
            "nobody",
            "--dry-run",
        ],
    );
    assert_refused(
        d,
        &out,
        "client nobody does not exist; add it with `ecca clients add nobody",
        &before,
    );
    let out = ecca(d, &["run", "--task", "   ", "--dry-run"]);
    assert_refused(d, &out, "the task is empty", &before);
    let out = ecca(
        d,
        &[
            "run",
            "--task",
            "x",
            "--stack",
            "cobol",
            "--client",
            "acme",
            "--dry-run",
        ],
    );
    assert_refused(d, &out, "stack \"cobol\" is not one ecca knows", &before);
    let out = ecca(
        d,
        &[
            "run",
            "--task",
            "x",
            "--client",
            "acme",
            "--budget-usd",
            "-3",
            "--dry-run",
        ],
    );
    assert_refused(d, &out, "--budget-usd", &before);
    let out = ecca(d, &["run", "--task", "x", "--client", "acme"]);
    assert_refused(
        d,
        &out,
        "no model key is configured; set ANTHROPIC_API_KEY",
        &before,
    );
    let out = ecca_env(
        d,
        &["run", "--task", "x", "--client", "acme"],
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-test"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
        ],
    );
    assert_refused(
        d,
        &out,
        "anthropic could not be reached at http://127.0.0.1:9",
        &before,
    );
    let out = ecca(d, &["approve", "T-0042"]);
    assert_refused(d, &out, "task T-0042 does not exist", &before);
    let out = ecca(d, &["revise", "T-0001", "--note", "  "]);
    assert_refused(d, &out, "needs a note", &before);
    let out = ecca(d, &["resume", "T-0001"]);
    assert_refused(
        d,
        &out,
        "task T-0001 is awaiting_approval, so it cannot be resumed",
        &before,
    );
    let out = ecca(
        d,
        &[
            "clients",
            "add",
            "bad id!",
            "--name",
            "x",
            "--budget-usd",
            "1",
        ],
    );
    assert_refused(d, &out, "client id \"bad id!\" is not usable", &before);

    std::fs::write(d.join("config.toml"), "[budgets]\ntask_usd = \"lots\"\n").unwrap();
    let out = ecca(d, &["run", "--task", "x", "--client", "acme", "--dry-run"]);
    assert_refused(d, &out, "config.toml is malformed", &before);
    let out = ecca(d, &["tasks"]);
    assert_refused(d, &out, "fix it or move it aside", &before);
}

#[test]
fn a_dry_run_prints_one_json_document_and_logs_only_to_files() {
    let dir = tempfile::tempdir().unwrap();
    // No tools: every tool step must say it was skipped, and why.
    std::fs::write(dir.path().join("config.toml"), "[tools]\nmode = \"none\"\n").unwrap();
    let out = ecca(
        dir.path(),
        &[
            "run",
            "--task",
            "Write a Python hello world",
            "--dry-run",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["task_id"], "T-0001");
    assert_eq!(doc["status"], "awaiting_approval");
    assert_eq!(doc["iterations"], 1);
    assert_eq!(doc["model_calls"], 4);
    assert_eq!(doc["simulated"], true);
    assert_eq!(doc["provider"], "offline");
    assert!(doc["tokens_used"].as_u64().unwrap() > 0);
    assert!(doc["cost_micros"].as_i64().unwrap() > 0);
    assert!(doc["quality_score"].as_f64().is_some());
    let states: Vec<&str> = doc["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "pending",
            "planning",
            "coding",
            "testing",
            "evaluating",
            "awaiting_approval"
        ]
    );
    let skipped = doc["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s == "execute: no code-execution server configured"),
        "{skipped:?}"
    );
    let logs = std::fs::read_dir(dir.path().join("logs")).unwrap().count();
    assert!(logs >= 1, "a log file in the data dir");
    let err = text(&out.stderr);
    assert!(
        !err.contains("INFO") && !err.contains("WARN"),
        "no log lines on the terminal: {err}"
    );
}

#[test]
fn the_dry_run_lints_executes_and_tests_for_real() {
    common::require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let out = ecca(
        dir.path(),
        &[
            "run",
            "--task",
            "Write a Python hello world",
            "--dry-run",
            "--json",
            "--auto-approve",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "delivered");
    assert_eq!(doc["skipped"], serde_json::json!([]), "every step ran");
    assert_eq!(
        doc["quality_score"], 9.0,
        "the offline evaluator scores verified work 9"
    );
    let conn =
        Connection::open_with_flags(dir.path().join("ecca.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tool = |step: &str| -> serde_json::Value {
        let payload: String = conn
            .query_row("SELECT payload FROM run_events WHERE kind = 'tool' AND payload LIKE ?1 ORDER BY id LIMIT 1", [format!("%\"step\":\"{step}\"%")], |r| r.get(0))
            .unwrap();
        serde_json::from_str(&payload).unwrap()
    };
    let lint = tool("lint");
    assert_eq!(lint["outcome"], "ok");
    assert!(
        lint["result"]["reply"]["linter"]
            .as_str()
            .unwrap()
            .starts_with("ruff "),
        "{lint}"
    );
    let exec = tool("execute");
    assert_eq!(
        exec["result"]["reply"]["stdout"], "Hello, world!\n",
        "run in the sandbox: {exec}"
    );
    assert_eq!(exec["result"]["reply"]["exit_code"], 0);
    let test = tool("test");
    assert_eq!(test["result"]["reply"]["passed"], true, "{test}");
    assert!(
        test["result"]["reply"]["stderr"]
            .as_str()
            .unwrap()
            .contains("Ran 1 test"),
        "{test}"
    );
    assert_eq!(tool("store")["outcome"], "ok");
    let snippets: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM snippets WHERE client_id = 'default'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(snippets, 1, "the good snippet was stored for the client");
    // A second run retrieves it.
    let out = ecca(
        dir.path(),
        &["run", "--task", "Write a Python hello world", "--dry-run"],
    );
    assert!(
        text(&out.stderr).contains("retrieve: 1 snippet(s)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn revise_then_approve_is_recorded_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        ecca(
            d,
            &["run", "--task", "Write a Python hello world", "--dry-run"]
        )
        .status
        .success()
    );
    let out = ecca(
        d,
        &["revise", "T-0001", "--note", "greet the operator by name"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("T-0001 awaiting_approval: 2 iteration(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = ecca(d, &["approve", "T-0001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("T-0001 delivered"), "{stdout}");

    let conn =
        Connection::open_with_flags(d.join("ecca.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let decisions: Vec<(String, String, i64)> = conn
        .prepare("SELECT decision, note, at FROM approvals WHERE task_id = 'T-0001' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(
        (decisions[0].0.as_str(), decisions[0].1.as_str()),
        ("revise", "greet the operator by name")
    );
    assert_eq!(
        (decisions[1].0.as_str(), decisions[1].1.as_str()),
        ("approve", "")
    );
    assert!(
        decisions[0].2 > 1_700_000_000_000 && decisions[1].2 >= decisions[0].2,
        "times recorded"
    );
    let (status, url): (String, String) = conn
        .query_row(
            "SELECT status, deliverable_url FROM code_tasks WHERE id = 'T-0001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "delivered");
    assert!(
        url.ends_with("deliveries/T-0001.tar.gz") && Path::new(&url).exists(),
        "{url}"
    );
    let code: String = conn
        .query_row(
            "SELECT content FROM artifacts WHERE name = 'main.py'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        code.contains("Revised for: operator: greet the operator by name"),
        "{code}"
    );

    // The delivered code is real: it runs and prints.
    let run = Command::new("python3")
        .arg("-c")
        .arg(&code)
        .output()
        .unwrap();
    assert_eq!(text(&run.stdout), "Hello, world!\n");

    let out = ecca(d, &["reject", "T-0001", "--note", "too late"]);
    assert!(text(&out.stderr).contains("task T-0001 is delivered, so it cannot be rejected"));
}

#[test]
fn ten_bullets_are_written_in_one_batched_call() {
    let dir = tempfile::tempdir().unwrap();
    let bullets: String = (1..=10).map(|i| format!("- helper number {i}\n")).collect();
    let out = ecca(
        dir.path(),
        &[
            "run",
            "--task",
            "Ten small helpers",
            "--description",
            &bullets,
            "--dry-run",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["iterations"], 10);
    let conn =
        Connection::open_with_flags(dir.path().join("ecca.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let count = |purpose: &str| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM cost_log WHERE purpose = ?1",
            [purpose],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("write_batch"), 1, "one call wrote all ten");
    assert_eq!(count("write"), 0);
    assert_eq!((count("tests"), count("evaluate")), (10, 10));
    assert!(text(&out.stderr).contains("coding · write (batched)"));
}

#[test]
fn reject_and_retry_and_client_listing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        ecca(
            d,
            &[
                "clients",
                "add",
                "acme",
                "--name",
                "Acme Ltd",
                "--budget-usd",
                "2000"
            ]
        )
        .status
        .success()
    );
    assert!(
        ecca(
            d,
            &[
                "run",
                "--task",
                "Write a Python hello world",
                "--client",
                "acme",
                "--dry-run"
            ]
        )
        .status
        .success()
    );
    let out = ecca(d, &["reject", "T-0001", "--note", "wrong client"]);
    assert!(
        text(&out.stdout).starts_with("T-0001 rejected"),
        "{}",
        text(&out.stdout)
    );
    let out = ecca(d, &["retry", "T-0001"]);
    assert!(
        text(&out.stdout).starts_with("T-0001 awaiting_approval"),
        "{}",
        text(&out.stdout)
    );
    let out = ecca(d, &["clients", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["client"]["id"], "acme");
    assert_eq!(list[0]["client"]["monthly_budget_micros"], 2_000_000_000i64);
    let out = ecca(d, &["tasks", "--json"]);
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["spent_micros"], tasks[0]["cost_micros"]);
    let conn =
        Connection::open_with_flags(d.join("ecca.db"), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE task_id = 'T-0001'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 2, "retry is a second attempt");
}

#[tokio::test]
async fn only_one_supervisor_works_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = ecca::config::Config::default();
    let first = ecca::supervisor::Supervisor::start(ecca::supervisor::SupervisorOptions::new(
        dir.path().into(),
        config.clone(),
    ))
    .await
    .unwrap();
    let out = ecca(dir.path(), &["run", "--task", "x", "--dry-run"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "another ecca (pid {}) is supervising runs",
            std::process::id()
        )),
        "{err}"
    );
    drop(first);
}
