//! Comparisons: one spec run by two agent kinds as sibling tasks, each in its own worktree,
//! waiting side by side at the gate; delivering one rejects the other with a note (or
//! cancels it, the note recorded, while it still works). With the real binary, the real
//! Claude Code against a local stand-in of the model API, and the real built-in loop.

use crate::cli_agents::{
    AgentHome, ClaudeTurns, agent_home, bash_turn, console_beside, files_under, has_tool_result,
    processes_in, write_then_done,
};
use crate::common;

use common::git_remote::has_branch;
use common::repo_run::{EccaHome, Role, add_acme, evaluator_passes, role_of};
use common::{MockLlm, Scripted, anthropic_stream};
use serde_json::{Value, json};
use std::sync::Arc;

/// `ecca run`'s arguments comparing the built-in loop with Claude Code on acme's task.
const COMPARE: [&str; 10] = [
    "run",
    "--client",
    "acme",
    "--task",
    "Add a shout helper to greet",
    "--agent",
    "builtin",
    "--compare",
    "claude-code",
    "--json",
];

const SHOUT_FILE: &str = "```file path=greet/shout.py
def shout(name):
    return name.upper() + \"!\"
```
";

/// The model behind both sides: the built-in loop's planner and writer add
/// `greet/shout.py`, Claude Code gets `claude`'s turns, the evaluator passes both.
async fn model_for_both(claude: Arc<ClaudeTurns>) -> MockLlm {
    let plan = json!({
        "approach": "a shout helper beside greet",
        "files": [{"path": "greet/shout.py", "action": "create", "why": "the helper"}],
        "criteria": [],
    })
    .to_string();
    let claude_turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    MockLlm::start(
        vec![],
        Some(Arc::new(move |request: &Value| match role_of(request) {
            Role::Planner => Scripted::sse(anthropic_stream(&plan, 900, 200, 0, 0)),
            Role::Writer => Scripted::sse(anthropic_stream(SHOUT_FILE, 1200, 400, 0, 0)),
            Role::Evaluator => evaluator_passes(),
            Role::Other => {
                let n = claude_turns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                claude(request, n)
            }
        })),
    )
    .await
}

/// The decisions recorded for `task_id`: (decision, note).
fn decisions(home: &EccaHome, task_id: &str) -> Vec<(String, String)> {
    common::read_rows(
        &home.db(),
        &format!("SELECT decision, note FROM approvals WHERE task_id = '{task_id}' ORDER BY id"),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_loop_and_claude_code_compared_side_by_side_delivering_one_rejects_the_other() {
    let AgentHome {
        _dir: _keep,
        home,
        bare,
        model,
    } = agent_home(
        model_for_both(write_then_done("greet/shout.py".into())).await,
        "",
    )
    .await;
    let mut args = COMPARE.to_vec();
    args.extend(["--budget-usd", "0.5"]);
    let compared = home.json(&args);
    let tasks = compared["tasks"].as_array().expect("both sides").clone();
    assert_eq!(tasks.len(), 2, "{compared:#}");
    let (builtin, claude) = (&tasks[0], &tasks[1]);
    assert_eq!(compared["compare_group"], "T-0001");
    for (side, kind) in [(builtin, "builtin"), (claude, "claude-code")] {
        assert_eq!(side["agent_kind"], kind, "{side:#}");
        assert_eq!(side["compare_group"], "T-0001", "{side:#}");
        assert_eq!(side["status"], "awaiting_approval", "{side:#}");
        assert_eq!(side["result_status"], "SUCCESS", "{side:#}");
        let files: Vec<&str> = side["repo"]["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert_eq!(
            files,
            ["greet/shout.py"],
            "{kind} wrote the helper: {side:#}"
        );
    }
    // Each side its own worktree and branch, so neither sees the other's change.
    assert_ne!(builtin["repo"]["worktree"], claude["repo"]["worktree"]);
    assert_ne!(builtin["repo"]["branch"], claude["repo"]["branch"]);
    // Each its own budget and its own cost: the agent's rows are Claude Code's side only.
    // Claude Code's side: two calls and the difference row, at its own figure.
    let agent_rows = common::read_rows(
        &home.db(),
        "SELECT task_id, COUNT(*), SUM(cost_micros) FROM cost_log WHERE purpose LIKE 'agent:%' GROUP BY task_id",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    );
    assert_eq!(agent_rows, [("T-0002".to_string(), 3, 27_767)]);
    assert!(builtin["cost_micros"].as_i64().unwrap() > 0);
    let requests = model.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| has_tool_result(&r.body)),
        "Claude Code ran its two turns"
    );

    // Approving Claude Code's side delivers its branch and rejects the built-in one.
    let approved = home.run(&["approve", "T-0002"]);
    let said = String::from_utf8_lossy(&approved.stdout).to_string();
    assert!(
        approved.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(
        said.contains("T-0001 (builtin, compared with T-0002) rejected"),
        "{said}"
    );
    assert_eq!(home.task("T-0002")["status"], "delivered");
    assert_eq!(home.task("T-0001")["status"], "rejected");
    assert_eq!(
        decisions(&home, "T-0001"),
        [(
            "reject".to_string(),
            "not chosen: T-0002 (claude-code) of the same comparison was delivered".to_string()
        )]
    );
    assert!(has_branch(
        &bare,
        claude["repo"]["branch"].as_str().unwrap()
    ));
    assert!(
        !has_branch(&bare, builtin["repo"]["branch"].as_str().unwrap()),
        "the side not chosen is not pushed"
    );
    // The rejected side's worktree is gone; nothing of it is left to clean up.
    let worktree = home
        .dir
        .join("worktrees")
        .join(builtin["repo"]["worktree"].as_str().unwrap());
    assert!(
        files_under(&worktree).is_empty(),
        "the rejected side's worktree was removed: {worktree:?}"
    );
}

#[test]
fn a_comparison_is_refused_whole_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let home = EccaHome::new(dir.path());
    add_acme(&home);
    let refused = |args: &[&str], says: &str| {
        let mut all = vec![
            "run",
            "--dry-run",
            "--client",
            "acme",
            "--task",
            "Add a helper",
        ];
        all.extend_from_slice(args);
        let out = home.run(&all);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(
        &["--agent", "claude-code", "--compare", "claude-code"],
        "two different agent kinds, and both are claude-code",
    );
    refused(&["--compare", "cursor"], "cursor");
    // Only the built-in loop works without a repository: the second side is refused, and
    // so is the first, whose task would otherwise run alone.
    refused(
        &["--compare", "claude-code"],
        "works in a client's repository, and client acme has none",
    );
    refused(
        &["--compare", "codex", "--auto-approve"],
        "cannot be used with",
    );
    let tasks = common::read_rows(&home.db(), "SELECT id FROM code_tasks", |r| {
        r.get::<_, String>(0)
    });
    assert!(tasks.is_empty(), "nothing was stored: {tasks:?}");
}

/// In the real console attached to `ecca serve`: the built-in side waits at the gate beside
/// Claude Code's side, still running a long command; approving the built-in side from the
/// comparison delivers it, cancels the other with the note recorded, and leaves none of its
/// processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_one_side_in_the_console_cancels_the_side_still_working() {
    let model = model_for_both(Arc::new(|_: &Value, _| bash_turn("sleep 300"))).await;
    let h = agent_home(model, "").await;
    let d = h.home.dir.clone();
    let (mut console, run, _stop) = console_beside(&h, &COMPARE);
    let screen = &mut console.screen;
    let worktrees = d.join("worktrees");
    common::wait_until("Claude Code's command running in its worktree", 180, || {
        processes_in(&worktrees)
            .iter()
            .any(|p| p.contains("sleep 300"))
    });
    screen.wait_for("Approvals (1)", 180);
    screen.keys(b"2");
    let compared = screen.wait_until(
        "the comparison with both sides' evidence",
        60,
        |_| None,
        |text| {
            text.contains("Compare T-0001 builtin ⇄ T-0002 claude-code")
                && text.contains("still working")
                && !text.contains("loading the evidence")
        },
    );
    assert!(compared.contains("y approves"), "{compared}");
    assert!(
        compared.contains("greet/shout.py"),
        "the built-in side's files: {compared}"
    );
    screen.keys(b"y");
    screen.wait_for("Nothing awaits approval.", 120);
    screen.keys(b"1");
    screen.wait_for_line(&["T-0001", "delivered"], &["failed"], 120);
    screen.wait_for_line(&["T-0002", "cancelled"], &["failed"], 120);

    let out = run.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["tasks"][1]["task_id"], "T-0002", "{doc:#}");
    assert_eq!(doc["tasks"][1]["status"], "cancelled", "{doc:#}");
    assert_eq!(
        decisions(&h.home, "T-0002"),
        [(
            "reject".to_string(),
            "not chosen: T-0001 (builtin) of the same comparison was delivered".to_string()
        )]
    );
    common::wait_until("nothing of Claude Code's side left", 30, || {
        processes_in(&d).is_empty()
    });
    screen.keys(b"q");
    console.wait_exit(60);
}
