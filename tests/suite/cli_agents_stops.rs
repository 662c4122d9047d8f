//! Agents ecca stops: at the task's budget, after a stall or a timeout, when the operator
//! cancels from the console; and agents that exit 0 without having done the work (SIGINT, a
//! refused write). Every case ends the run failed or cancelled with nothing left running.

use crate::cli_agents::{
    KEY, RUN_CLAUDE, agent_home, agent_rows, bash_turn, console_beside, model_for_claude,
    processes_in, run_claude, stalled_turn, write_then_done,
};
use crate::common;

use common::repo_run::{Role, role_of};
use serde_json::Value;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_is_stopped_at_the_task_budget_and_leaves_no_process() {
    // Every turn asks for another command: only a budget ends it.
    let model = model_for_claude(Arc::new(|_: &Value, _| bash_turn("true"))).await;
    let h = agent_home(model, "").await;
    let run = run_claude(&h.home, &["--budget-usd", "0.05"]);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("budget"), "{reason}");
    // Each call costs $0.022038 at ecca's prices: the agent stops within one call of the cap.
    let spent: i64 = agent_rows(&h.home).iter().map(|r| r.1).sum();
    assert!(spent >= 50_000, "it ran up to the cap: {spent}");
    assert!(
        spent <= 50_000 + 22_038,
        "at most one call past the cap: {spent}"
    );
    assert!(run["cost_micros"].as_i64().unwrap() >= spent);
    let left = processes_in(&h.home.dir);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    assert_eq!(
        h.model
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| role_of(&r.body) == Role::Evaluator)
            .count(),
        0,
        "a stopped agent is not evaluated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_claude_code_is_stopped_by_the_watchdog() {
    let model = model_for_claude(Arc::new(|_: &Value, _| stalled_turn())).await;
    // 3 s of silence: Claude Code itself never times out a stalled stream.
    let h = agent_home(model, "[agents]\nstall_minutes = 0.05\n").await;
    let run = run_claude(&h.home, &[]);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stalled"), "{reason}");
    let left = processes_in(&h.home.dir);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_exiting_0_after_sigint_or_a_refused_write_is_judged_failed() {
    // SIGINT while the model streams: Claude Code ends with `error_during_execution` and
    // exit code 0.
    let model = model_for_claude(Arc::new(|_: &Value, _| stalled_turn())).await;
    let h = agent_home(model, "").await;
    let mut child = common::ecca_command(&h.home.dir);
    child.args(RUN_CLAUDE);
    child.env("ANTHROPIC_BASE_URL", &h.model.url);
    child.env("ANTHROPIC_API_KEY", KEY);
    child.stdout(std::process::Stdio::piped());
    let child = child.spawn().unwrap();
    let worktrees = h.home.dir.join("worktrees");
    let mut agent_pid = None;
    common::wait_until("Claude Code streaming in the worktree", 120, || {
        agent_pid = processes_in(&worktrees)
            .iter()
            .find(|p| p.contains("claude") && p.contains("--output-format"))
            .and_then(|p| p.split(':').next()?.parse::<i32>().ok());
        agent_pid.is_some() && h.model.request_count() > 0
    });
    let agent_pid = agent_pid.unwrap();
    // While it runs, the key is in the agent's environment and in no process's arguments.
    let environ = std::fs::read(format!("/proc/{agent_pid}/environ")).unwrap();
    assert!(environ.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !cmdline.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the API key is in the arguments of {}",
            entry.path().display()
        );
    }
    // SAFETY: kill(2) on a pid this test just found; it touches no memory.
    unsafe {
        libc::kill(agent_pid, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("claude-code failed"), "{reason}");

    // A write Claude Code's own permissions refuse (outside its working directory): it
    // still ends with `success` and exit code 0; the refusal is only in the result.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("escape.py");
    let model = model_for_claude(write_then_done(target.to_string_lossy().into_owned())).await;
    let h = agent_home(model, "").await;
    let run = run_claude(&h.home, &[]);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("claude-code failed"), "{reason}");
    assert!(!target.exists(), "the refused write did not happen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_past_its_timeout_is_stopped() {
    // Busy, never silent for long (a command a turn), but never done.
    let model = model_for_claude(Arc::new(|_: &Value, _| bash_turn("sleep 1"))).await;
    let h = agent_home(model, "[agents]\ntimeout_minutes = 0.1\n").await;
    let run = run_claude(&h.home, &[]);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("timeout"), "{reason}");
    assert!(
        h.model.request_count() >= 2,
        "it was working until the timeout"
    );
    let left = processes_in(&h.home.dir);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_from_the_console_stops_the_agent_and_everything_it_started() {
    // Claude Code runs a long command and would wait on it: only a cancel ends the run.
    let model = model_for_claude(Arc::new(|_: &Value, _| bash_turn("sleep 300"))).await;
    let h = agent_home(model, "[tools]\nmode = \"none\"\n").await;
    let d = h.home.dir.clone();
    // The console starts `ecca serve`; the task is started from another terminal.
    let (mut console, run, _stop) = console_beside(&h, &RUN_CLAUDE);
    let worktrees = d.join("worktrees");
    common::wait_until("Claude Code's command running in the worktree", 120, || {
        processes_in(&worktrees)
            .iter()
            .any(|p| p.contains("sleep 300"))
    });
    console.screen.wait_for("Add a shout helper", 60);
    console.screen.keys(b"c");
    console
        .screen
        .wait_for_line(&["T-0001", "cancelled"], &["failed"], 60);
    let out = run.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "cancelled", "{doc:#}");
    common::wait_until("nothing of the agent left", 30, || {
        processes_in(&d).is_empty()
    });
    console.screen.keys(b"q");
    console.wait_exit(60);
}
