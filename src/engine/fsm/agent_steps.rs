//! The steps of a repository run whose change a third-party agent (Claude Code, Codex CLI,
//! Aider) writes: it is handed the task with the checks it will be judged by, and what it
//! leaves in the worktree goes to the same checks, evaluator and gate as the built-in
//! loop's change. Failing checks go back to it, as they would to the built-in writer.

use super::repo_steps::{check_queue, ended, next_check, repo};
use super::{Agent, Effect, Phase};
use crate::repo::ResultStatus;

/// Starts the third-party agent on the task, with the checks it will be judged by and
/// the feedback of the round before (failing checks, an operator's revision note).
pub(super) fn run_agent(a: &mut Agent) -> Vec<Effect> {
    let brief = a.task.render();
    let r = repo(a);
    r.agent_runs += 1;
    let kind = r.agent.clone().unwrap_or_default();
    let mut prompt = format!(
        "{brief}\n## How to work\nThe current directory is a git worktree of the client's repository on its own branch. Make the change in the files; do not commit, push or change branches: ecca reviews the diff and delivers it.\n"
    );
    let checks = check_queue(r);
    if !checks.is_empty() {
        prompt.push_str("\n## Checks your change must pass\n");
        for (kind, command) in &checks {
            prompt.push_str(&format!("- {kind}: `{command}`\n"));
        }
    }
    if !r.criteria.is_empty() {
        prompt.push_str("\n## Acceptance criteria\n");
        for c in &r.criteria {
            prompt.push_str(&format!("- {}\n", c.text));
        }
    }
    if let Some(feedback) = &r.feedback {
        prompt.push_str(&format!(
            "\n## Feedback on the previous attempt\n{feedback}\n"
        ));
    }
    a.phase = Phase::AgentWorking;
    let effect = Effect::RunAgent { kind, prompt };
    a.pending = Some(effect.clone());
    vec![effect]
}

/// The agent is done: a failed or empty run ends here; a change goes to the checks.
pub(super) fn agent_exited(
    a: &mut Agent,
    ok: bool,
    reason: &str,
    changed: &[String],
) -> Vec<Effect> {
    a.pending = None;
    let kind = repo(a).agent.clone().unwrap_or_default();
    if !ok {
        let status = if repo(a).applied {
            ResultStatus::SoftFail
        } else {
            ResultStatus::HardFail
        };
        return ended(a, status, format!("{kind} failed: {reason}"));
    }
    if changed.is_empty() {
        let status = if repo(a).applied {
            ResultStatus::SoftFail
        } else {
            ResultStatus::HardFail
        };
        return ended(
            a,
            status,
            format!("{kind} finished but changed nothing in the worktree ({reason})"),
        );
    }
    a.context
        .record("agent", format!("{kind} changed {}", changed.join(", ")));
    let r = repo(a);
    r.applied = true;
    r.feedback = None;
    r.checks.clear();
    r.cursor = 0;
    next_check(a)
}
