//! `ecca audit` and `ecca diff` run as the real binary on a store filled through the
//! store's own writer, the way a repository run leaves it.

use crate::common;

use ecca::domain::TaskStatus;
use ecca::engine::fsm::Agent;
use ecca::engine::fsm::Limits;
use ecca::engine::fsm::repo::RepoWork;
use ecca::engine::prompts::TaskBrief;
use ecca::repo::{AuditEntry, DiffSummary, FileChange};
use ecca::store::{ClientRecord, RunRecord, Store, TaskRecord, WriteOp};
use std::path::Path;
use std::process::Output;

fn ecca(dir: &Path, args: &[&str]) -> Output {
    common::ecca_command(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn task(id: &str) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        client_id: "acme".into(),
        title: "Add --help".into(),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        model_mode: "offline".into(),
        status: TaskStatus::AwaitingApproval,
        status_reason: None,
        budget_micros: 1_000_000,
        deliverable_url: None,
        iterations: 1,
        quality_score: None,
        tokens_used: 0,
        cost_micros: 0,
        cost_estimated: false,
        model_calls: 0,
        created_at: 1_790_000_000_000,
        updated_at: 1_790_000_000_000,
        completed_at: None,
        base_branch: None,
        acceptance: Vec::new(),
        result_status: None,
        batch_id: None,
        batch_app: None,
        price_micros: None,
        compare_group: None,
    }
}

/// A run of `task_id` whose checkpoint holds `repo`.
fn run(task_id: &str, attempt: i64, repo: Option<RepoWork>) -> RunRecord {
    let mut agent = Agent::new(
        TaskBrief {
            client_id: "acme".into(),
            title: "Add --help".into(),
            description: String::new(),
            stack: "python".into(),
        },
        Limits::from_config(&ecca::config::Config::default(), 1_000_000),
    );
    agent.repo = repo;
    RunRecord {
        id: format!("{task_id}-r{attempt}"),
        task_id: task_id.into(),
        attempt,
        status: TaskStatus::AwaitingApproval,
        agent_state: "awaiting_approval".into(),
        fsm_state: serde_json::to_string(&agent).unwrap(),
        tokens_used: 0,
        cost_micros: 0,
        model_calls: 0,
        owner_pid: None,
        started_at: 1_790_000_000_000,
        updated_at: 1_790_000_000_000,
        finished_at: None,
    }
}

const PATCH: &str = "diff --git a/slug/cli.py b/slug/cli.py
--- a/slug/cli.py
+++ b/slug/cli.py
@@ -1,2 +1,3 @@
 import sys
-print(sys.argv)
+if '--help' in sys.argv:
+    print('usage: slug TITLE')
";

fn changed() -> RepoWork {
    RepoWork {
        worktree: "T-0001-r2".into(),
        branch: "agt/T-0001".into(),
        base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        diff: Some(DiffSummary {
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            files: vec![
                FileChange {
                    path: "slug/cli.py".into(),
                    status: "modified".into(),
                    added: 2,
                    removed: 1,
                    binary: false,
                },
                FileChange {
                    path: "docs/logo.png".into(),
                    status: "added".into(),
                    added: 0,
                    removed: 0,
                    binary: true,
                },
            ],
            patch: PATCH.into(),
            patch_truncated: false,
        }),
        ..RepoWork::default()
    }
}

fn audit(task_id: &str, run_id: &str, at: i64, tool: &str, outcome: &str, ms: u64) -> WriteOp {
    WriteOp::Audit {
        task_id: task_id.into(),
        run_id: run_id.into(),
        entry: AuditEntry {
            at,
            tool: tool.into(),
            args_digest: ecca::repo::digest(tool),
            outcome: outcome.into(),
            duration_ms: ms,
        },
    }
}

/// A store with client acme and:
/// - T-0001: two runs, the latest with a repository diff, and three audit rows;
/// - T-0002: one run that does not work on a repository, no audit rows;
/// - T-0003: a repository run that has not changed anything yet;
/// - T-0004: no run at all.
async fn filled_store(dir: &Path) {
    let store = Store::open(dir).unwrap();
    let mut ops = vec![WriteOp::InsertClient(ClientRecord {
        id: "acme".into(),
        name: "Acme".into(),
        monthly_budget_micros: 100_000_000,
        repo_url: Some("https://github.com/acme/slug.git".into()),
        created_at: 0,
    })];
    for id in ["T-0001", "T-0002", "T-0003", "T-0004"] {
        ops.push(WriteOp::InsertTask(Box::new(task(id))));
    }
    ops.extend([
        WriteOp::InsertRun(run("T-0001", 1, None)),
        WriteOp::InsertRun(run("T-0001", 2, Some(changed()))),
        WriteOp::InsertRun(run("T-0002", 1, None)),
        WriteOp::InsertRun(run("T-0003", 1, Some(RepoWork::default()))),
        // 2026-09-21 14:13:20 UTC
        audit(
            "T-0001",
            "T-0001-r2",
            1_790_000_000_000,
            "git worktree add",
            "ok",
            120,
        ),
        audit(
            "T-0001",
            "T-0001-r2",
            1_790_000_001_000,
            "code-assistant/apply_diff",
            "failed: hunk 1 does not apply\u{1b}]0;owned\u{7}",
            2_500,
        ),
        audit(
            "T-0001",
            "T-0001-r2",
            1_790_000_002_000,
            "sandbox: python3 -m unittest",
            "ok",
            9,
        ),
    ]);
    store.write(ops).await.unwrap();
}

#[tokio::test]
async fn audit_prints_a_task_s_rows_as_an_aligned_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;

    let out = ecca(dir.path(), &["audit", "--task", "T-0001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("TIME (UTC)"), "{text}");
    assert!(
        lines[1].starts_with("2026-09-21 14:13:20  T-0001-r2"),
        "{text}"
    );
    assert!(lines[2].contains("code-assistant/apply_diff") && lines[2].contains("2.5 s"));
    assert!(lines[3].contains("sandbox: python3 -m unittest") && lines[3].contains("9 ms"));
    // Every column starts at the same place on every line.
    for column in ["RUN", "TOOL", "OUTCOME", "ARGS"] {
        let at = lines[0].find(column).unwrap();
        for l in &lines[1..] {
            assert_eq!(&l[at - 2..at], "  ", "{column} misaligned in\n{text}");
            assert_ne!(&l[at..at + 1], " ", "{column} misaligned in\n{text}");
        }
    }
    assert!(lines[1].ends_with(&ecca::repo::digest("git worktree add")));
    // What the tool reported cannot drive the terminal.
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );

    let out = ecca(dir.path(), &["audit", "--task", "T-0001", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["tool"], "code-assistant/apply_diff");
    assert_eq!(rows[1]["run_id"], "T-0001-r2");
    assert_eq!(rows[1]["duration_ms"], 2500);
    assert_eq!(rows[1]["at"], 1_790_000_001_000i64);
    assert_eq!(rows[1]["time_utc"], "2026-09-21 14:13:21");
    assert_eq!(
        rows[1]["args_digest"],
        ecca::repo::digest("code-assistant/apply_diff")
    );
    // The JSON keeps the outcome whole: the escape byte is escaped, not dropped.
    assert!(
        rows[1]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: hunk 1 does not apply\u{1b}]0;owned")
    );
}

#[tokio::test]
async fn audit_of_an_unknown_task_fails_and_a_task_without_rows_says_so() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;

    let out = ecca(dir.path(), &["audit", "--task", "T-0099"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("task T-0099 does not exist; `ecca tasks` lists the tasks"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    let out = ecca(dir.path(), &["audit", "--task", "T-0002"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("task T-0002 has no audit rows"),
        "{}",
        stdout(&out)
    );

    let out = ecca(dir.path(), &["audit", "--task", "T-0002", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
}

#[tokio::test]
async fn diff_prints_the_latest_run_s_patch_and_its_stat() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;

    let out = ecca(dir.path(), &["diff", "T-0001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), PATCH);

    let out = ecca(dir.path(), &["diff", "T-0001", "--stat"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("slug/cli.py   | +2 -1"), "{text}");
    assert!(lines[0].ends_with("modified"), "{text}");
    assert!(lines[1].starts_with("docs/logo.png | binary"), "{text}");
    assert_eq!(
        lines[2],
        "2 files changed, +2 -1 against 0123456789ab (run T-0001-r2)"
    );
}

#[tokio::test]
async fn diff_says_in_a_sentence_when_there_is_no_repository_diff() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;

    for (task_id, expected) in [
        (
            "T-0002",
            "task T-0002 has no repository diff: its run T-0002-r1 does not work on a client repository",
        ),
        (
            "T-0003",
            "task T-0003 has no repository diff yet: its run T-0003-r1 has not changed its worktree",
        ),
        (
            "T-0004",
            "task T-0004 has no repository diff: it has not started a run yet",
        ),
    ] {
        let out = ecca(dir.path(), &["diff", task_id, "--stat"]);
        assert!(out.status.success(), "{task_id}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(expected),
            "{task_id}: {}",
            stdout(&out)
        );
    }

    let out = ecca(dir.path(), &["diff", "T-0099"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("task T-0099 does not exist; `ecca tasks` lists the tasks"));
}
