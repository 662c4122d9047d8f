//! The transitions of a run on a client's repository (seeds 002 and 003): worktree → smoke
//! check (the test command on the base; a broken base stops the run before any model call)
//! → explore (structure, search) → plan → read the planned files → write a diff → apply it
//! all-or-none (a diff that does not apply goes back to the writer with the failure, at
//! most `max_retries` times) → the repository's checks and each criterion's command → the
//! diff against the base and its risk → evaluate → approval gate → deliver (branch + PR).
//!
//! The harness decides the result: `HARD_FAIL` when nothing could be applied, `SOFT_FAIL`
//! when checks still fail (or a criterion is unproven) after the retries, `SUCCESS`
//! otherwise. A model saying "done" proves nothing.

use super::agent_steps::{agent_exited, run_agent};
use super::repo::RepoWork;
use super::steps::{call_tool, finish, note_skip, switch_note, working_tier};
use super::{Agent, AgentEvent, Effect, End, ModelCall, Phase, Tier};
use crate::engine::prompts::parse_evaluation;
use crate::engine::repo_prompts::{self as rp, short};
use crate::engine::tools::{ToolOutcome, ToolReply, ToolRequest};
use crate::llm::Purpose;
use crate::repo::{CheckOutcome, CheckStatus, ResultStatus};

pub(super) fn repo(a: &mut Agent) -> &mut RepoWork {
    // Only called on runs that have one (the caller checks `a.repo.is_some()`).
    a.repo.get_or_insert_with(RepoWork::default)
}

/// Events of a repository run; None when the common handling applies.
pub(super) fn handle(a: &mut Agent, event: &AgentEvent) -> Option<Vec<Effect>> {
    Some(match (&a.phase, event) {
        (Phase::Pending, AgentEvent::Start) => {
            a.phase = Phase::Preparing;
            a.pending = Some(Effect::PrepareRepo);
            vec![Effect::PrepareRepo]
        }
        (
            Phase::Preparing,
            AgentEvent::RepoReady {
                worktree,
                branch,
                base_branch,
                base_commit,
                commands,
            },
        ) => {
            a.pending = None;
            let r = repo(a);
            r.worktree = worktree.clone();
            r.branch = branch.clone();
            r.base_branch = base_branch.clone();
            r.base_commit = base_commit.clone();
            r.commands = commands.clone();
            a.context.record(
                "worktree",
                format!("{branch} from {base_branch} @ {}", short(base_commit)),
            );
            smoke_check(a)
        }
        (Phase::Inspecting, AgentEvent::RepoFailed { error }) => finish(
            a,
            End::Failed {
                reason: format!("the diff against the base could not be read: {error}"),
            },
        ),
        (Phase::Preparing, AgentEvent::RepoFailed { error }) => finish(
            a,
            End::Failed {
                reason: format!("worktree: {error}"),
            },
        ),
        (Phase::Inspecting, AgentEvent::DiffInspected { diff, risk }) => {
            a.pending = None;
            let empty = diff.is_empty();
            let r = repo(a);
            r.diff = Some(diff.clone());
            r.risk = Some(risk.clone());
            if empty {
                return Some(ended(
                    a,
                    ResultStatus::HardFail,
                    "the writer's changes left the repository as it was".into(),
                ));
            }
            a.phase = Phase::Evaluating;
            vec![evaluate(a)]
        }
        (Phase::Delivering, AgentEvent::DeliveryProgress { commit, pushed }) => {
            let r = repo(a);
            if commit.is_some() {
                r.commit = commit.clone();
            }
            r.pushed |= *pushed;
            vec![]
        }
        (Phase::Delivering, AgentEvent::Delivered { url }) => {
            a.pending = None;
            a.deliverable = Some(url.clone());
            repo(a).pr_url = Some(url.clone());
            finish(a, End::Delivered)
        }
        (Phase::AwaitingApproval, AgentEvent::Approved) => {
            a.phase = Phase::Delivering;
            a.context
                .record("decision", "operator approved the deliverable");
            let effect = Effect::Deliver { files: vec![] };
            a.pending = Some(effect.clone());
            vec![effect]
        }
        (Phase::AwaitingApproval, AgentEvent::Revised { note }) => {
            a.revisions += 1;
            a.context
                .record("decision", format!("operator asked for a revision: {note}"));
            a.revision_note = Some(note.clone());
            let r = repo(a);
            r.feedback = Some(format!("The operator asked for a revision: {note}"));
            r.apply_retries = 0;
            r.check_retries = 0;
            r.result = None;
            if repo(a).agent.is_some() {
                run_agent(a)
            } else {
                read_files(a)
            }
        }
        (
            Phase::AgentWorking,
            AgentEvent::AgentExited {
                ok,
                reason,
                changed,
            },
        ) => agent_exited(a, *ok, reason, changed),
        (
            Phase::SmokeCheck
            | Phase::Exploring
            | Phase::Reading
            | Phase::Retrieving
            | Phase::Applying
            | Phase::Checking,
            AgentEvent::ToolReturned { outcome },
        ) => {
            a.pending = None;
            tool_returned(a, outcome.clone())
        }
        _ => return None,
    })
}

fn smoke_check(a: &mut Agent) -> Vec<Effect> {
    let r = repo(a);
    let Some(test) = r.commands.test.clone() else {
        r.smoke = Some(skipped_outcome(
            "smoke",
            "",
            "no test command was detected or configured",
        ));
        let line = "smoke check: no test command was detected or configured".to_string();
        if !a.skipped.contains(&line) {
            a.skipped.push(line);
        }
        return write_the_change(a);
    };
    let request = ToolRequest::RunCheck {
        worktree: r.worktree.clone(),
        kind: "smoke".into(),
        command: test,
        timeout_secs: r.limits.check_timeout_secs,
    };
    call_tool(a, Phase::SmokeCheck, request)
}

/// After the smoke check: the built-in loop explores and plans; a third-party agent is
/// handed the task.
fn write_the_change(a: &mut Agent) -> Vec<Effect> {
    if repo(a).agent.is_some() {
        run_agent(a)
    } else {
        explore(a)
    }
}

fn explore(a: &mut Agent) -> Vec<Effect> {
    let worktree = repo(a).worktree.clone();
    call_tool(a, Phase::Exploring, ToolRequest::RepoStructure { worktree })
}

/// A search for the task's longer words, case-insensitive.
fn search_pattern(title: &str) -> Option<String> {
    let mut words: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.chars().count() >= 4)
        .map(|w| w.to_lowercase())
        .collect();
    words.sort();
    words.dedup();
    words.truncate(8);
    (!words.is_empty()).then(|| format!("(?i)({})", words.join("|")))
}

fn skipped_outcome(kind: &str, command: &str, reason: &str) -> CheckOutcome {
    CheckOutcome {
        kind: kind.into(),
        command: command.into(),
        status: CheckStatus::Skipped,
        reason: reason.into(),
        output: String::new(),
        duration_ms: 0,
    }
}

/// A check's tool outcome as a check outcome: a tool that could not run is a skip.
fn as_check(kind: &str, command: &str, outcome: ToolOutcome) -> CheckOutcome {
    match outcome {
        ToolOutcome::Done {
            reply: ToolReply::Check(c),
        } => c,
        ToolOutcome::Skipped { reason } => skipped_outcome(kind, command, &reason),
        ToolOutcome::Failed { error } => {
            skipped_outcome(kind, command, &format!("the check could not run: {error}"))
        }
        ToolOutcome::Done { .. } => {
            skipped_outcome(kind, command, "the sandbox answered something else")
        }
    }
}

fn text_of(outcome: &ToolOutcome) -> Option<String> {
    match outcome {
        ToolOutcome::Done {
            reply: ToolReply::Text { text, .. },
        } => Some(text.clone()),
        _ => None,
    }
}

fn tool_returned(a: &mut Agent, outcome: ToolOutcome) -> Vec<Effect> {
    match a.phase.clone() {
        Phase::SmokeCheck => {
            let command = repo(a).commands.test.clone().unwrap_or_default();
            let check = as_check("smoke", &command, outcome);
            let base = repo(a).base_commit.clone();
            repo(a).smoke = Some(check.clone());
            match check.status {
                CheckStatus::Failed => {
                    a.context
                        .record("smoke", "the base commit fails its own tests");
                    finish(
                        a,
                        End::Failed {
                            reason: format!(
                                "broken_base: `{command}` fails on the base commit {} before any change ({}); fix the base branch or set [clients.{}] test in the config",
                                short(&base),
                                check.reason,
                                a.task.client_id
                            ),
                        },
                    )
                }
                CheckStatus::Skipped => {
                    let line = format!("smoke check: {}", check.reason);
                    if !a.skipped.contains(&line) {
                        a.skipped.push(line);
                    }
                    write_the_change(a)
                }
                CheckStatus::Passed => {
                    a.context
                        .record("smoke", format!("base passes `{command}`"));
                    write_the_change(a)
                }
            }
        }
        Phase::Exploring => {
            note_skip(a, "explore", &outcome);
            let max = repo(a).limits.max_context_bytes;
            if repo(a).structure.is_empty() {
                // Never left empty: an empty structure is how this step tells the outline's
                // answer from the search's, and a skipped outline would ask again forever.
                let outline = text_of(&outcome)
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| "(the repository's structure could not be read)".into());
                let (text, _) = rp::bounded(&outline, max / 2);
                repo(a).structure = text;
                if let Some(pattern) = search_pattern(&a.task.title) {
                    let worktree = repo(a).worktree.clone();
                    return call_tool(
                        a,
                        Phase::Exploring,
                        ToolRequest::SearchCode {
                            worktree,
                            pattern,
                            max_results: 40,
                        },
                    );
                }
            } else {
                let (text, _) = rp::bounded(&text_of(&outcome).unwrap_or_default(), max / 4);
                repo(a).hits = text;
            }
            a.phase = Phase::Planning;
            vec![plan(a)]
        }
        Phase::Reading => {
            let r = repo(a);
            let i = r.cursor;
            if let Some(file) = r.files.get(i).cloned() {
                match text_of(&outcome) {
                    Some(content) => {
                        let used: usize = r.contents.iter().map(|(_, c)| c.len()).sum();
                        let room = r.limits.max_context_bytes.saturating_sub(used).max(1024);
                        let (content, _) = rp::bounded(&content, room);
                        r.contents.push((file.path.clone(), content));
                    }
                    // A file the plan thought existed but does not: it is written whole.
                    None => r.files[i].exists = false,
                }
            }
            repo(a).cursor += 1;
            next_read(a)
        }
        Phase::Retrieving => {
            note_skip(a, "retrieve", &outcome);
            if let ToolOutcome::Done {
                reply: ToolReply::Snippets { snippets },
            } = outcome
                && let Some(s) = a.subtasks.first_mut()
            {
                s.snippets = snippets;
            }
            a.phase = Phase::Writing;
            vec![write(a)]
        }
        Phase::Applying => applied(a, outcome),
        Phase::Checking => {
            let r = repo(a);
            let queue = check_queue(r);
            if let Some((kind, command)) = queue.get(r.cursor).cloned() {
                let check = as_check(&kind, &command, outcome);
                r.checks.push(check);
            }
            r.cursor += 1;
            next_check(a)
        }
        _ => vec![],
    }
}

fn model_call(a: &mut Agent, purpose: Purpose, system: &str, prompt: String) -> Effect {
    let (tier, max_tokens) = match purpose {
        Purpose::Plan => (Tier::Planner, a.limits.max_tokens_plan),
        Purpose::Evaluate => (Tier::Cheap, a.limits.max_tokens_evaluate),
        _ => (Tier::Writer, a.limits.max_tokens_write),
    };
    let tier = if tier == Tier::Cheap {
        tier
    } else {
        working_tier(a, tier)
    };
    let effect = Effect::CallModel(ModelCall {
        purpose,
        tier,
        system: system.to_string(),
        prompt,
        max_tokens,
    });
    a.pending = Some(effect.clone());
    effect
}

fn plan(a: &mut Agent) -> Effect {
    let criteria: Vec<String> = repo(a).criteria.iter().map(|c| c.text.clone()).collect();
    let r = a.repo.clone().unwrap_or_default();
    let prompt = rp::plan_prompt(
        &a.task,
        &criteria,
        &r,
        &r.structure,
        &r.hits,
        r.limits.max_files,
    );
    model_call(a, Purpose::Plan, rp::SYSTEM_REPO_PLANNER, prompt)
}

fn write(a: &mut Agent) -> Effect {
    let r = a.repo.clone().unwrap_or_default();
    let snippets = a
        .subtasks
        .first()
        .map(|s| s.snippets.clone())
        .unwrap_or_default();
    let prompt = rp::write_prompt(&a.task, &a.approach, &r, &r.contents, &snippets);
    model_call(a, Purpose::Write, rp::SYSTEM_REPO_WRITER, prompt)
}

fn evaluate(a: &mut Agent) -> Effect {
    let r = a.repo.clone().unwrap_or_default();
    let mut evidence = Vec::new();
    if let Some(s) = &r.smoke {
        evidence.push(format!("smoke check on the base: {}", verdict(s)));
    }
    for c in &r.checks {
        evidence.push(format!("{}: {}", c.kind, verdict(c)));
    }
    if r.checks.is_empty() {
        evidence.push("checks: skipped (no lint or test command)".into());
    }
    let diff = r.diff.as_ref().map(|d| d.patch.clone()).unwrap_or_default();
    let (diff, _) = rp::bounded(&diff, r.limits.max_context_bytes);
    let prompt = rp::evaluate_prompt(&a.task, &evidence, &diff);
    model_call(
        a,
        Purpose::Evaluate,
        crate::engine::prompts::SYSTEM_EVALUATOR,
        prompt,
    )
}

fn verdict(c: &CheckOutcome) -> String {
    match c.status {
        CheckStatus::Passed => format!("passed ({})", c.command),
        CheckStatus::Failed => format!("failed ({}: {})", c.command, c.reason),
        CheckStatus::Skipped => format!("skipped ({})", c.reason),
    }
}

/// A model's reply, in a repository run.
pub(super) fn model_replied(a: &mut Agent, purpose: Purpose, text: &str) -> Vec<Effect> {
    let mut effects: Vec<Effect> = switch_note(a).into_iter().collect();
    match purpose {
        Purpose::Plan => {
            let max_files = repo(a).limits.max_files;
            match rp::parse_plan(text, max_files) {
                Ok(plan) => {
                    a.approach = plan.approach;
                    a.context.record(
                        "plan",
                        format!(
                            "{} file(s): {}",
                            plan.files.len(),
                            plan.files
                                .iter()
                                .map(|f| f.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    let r = repo(a);
                    r.files = plan.files;
                    for (i, c) in r.criteria.iter_mut().enumerate() {
                        c.check = plan
                            .checks
                            .iter()
                            .find(|(text, _)| text.eq_ignore_ascii_case(&c.text))
                            .or_else(|| plan.checks.get(i))
                            .map(|(_, check)| check.clone());
                    }
                    effects.extend(read_files(a));
                }
                Err(why) => {
                    a.model_failures += 1;
                    if a.model_failures > a.limits.model_retries {
                        return finish(
                            a,
                            End::Failed {
                                reason: format!("the plan could not be read: {why}"),
                            },
                        );
                    }
                    effects.push(Effect::Note {
                        text: format!("the plan could not be read ({why}); asking again"),
                    });
                    effects.push(plan(a));
                }
            }
        }
        Purpose::Write => {
            a.iterations += 1;
            effects.extend(changes_written(a, text));
        }
        Purpose::Evaluate => {
            let evaluation = parse_evaluation(text);
            let pass = a.limits.pass_score;
            a.context.record(
                "evaluate",
                format!("evaluated the change: {}/10", evaluation.score),
            );
            let r = repo(a);
            r.score = Some(evaluation.score);
            if evaluation.score < pass && r.check_retries < r.limits.max_retries {
                r.check_retries += 1;
                r.feedback = Some(format!(
                    "The reviewer scored the change {}/10: {}",
                    evaluation.score,
                    evaluation.issues.join("; ")
                ));
                effects.extend(read_files(a));
            } else {
                r.result = Some(ResultStatus::Success);
                a.phase = Phase::AwaitingApproval;
                a.pending = None;
                effects.push(Effect::AwaitApproval);
            }
        }
        _ => {}
    }
    effects
}

/// Reads the planned files again (they may have changed), then writes.
fn read_files(a: &mut Agent) -> Vec<Effect> {
    let r = repo(a);
    r.contents.clear();
    r.cursor = 0;
    next_read(a)
}

fn next_read(a: &mut Agent) -> Vec<Effect> {
    let r = repo(a);
    while let Some(f) = r.files.get(r.cursor) {
        if f.exists {
            let request = ToolRequest::ReadFile {
                worktree: r.worktree.clone(),
                path: f.path.clone(),
            };
            return call_tool(a, Phase::Reading, request);
        }
        r.cursor += 1;
    }
    // Similar snippets of this client once, before the first write.
    if a.subtasks.is_empty() {
        a.subtasks.push(super::steps::new_work(
            crate::engine::prompts::SubtaskSpec {
                title: a.task.title.clone(),
                description: a.task.description.clone(),
                language: crate::domain::language_of_stack(&a.task.stack).to_string(),
                filename: String::new(),
            },
        ));
        let s = &a.subtasks[0];
        let request = ToolRequest::SearchSnippets {
            client_id: a.task.client_id.clone(),
            query: format!("{}: {}", s.spec.title, s.spec.description),
            language: s.spec.language.clone(),
            limit: 3,
        };
        return call_tool(a, Phase::Retrieving, request);
    }
    a.phase = Phase::Writing;
    vec![write(a)]
}

/// Reads the writer's reply and asks for it to be applied, all-or-none.
fn changes_written(a: &mut Agent, text: &str) -> Vec<Effect> {
    let changes = match rp::parse_changes(text) {
        Ok(c) => c,
        Err(why) => return not_applied(a, format!("your reply could not be read: {why}")),
    };
    let r = repo(a);
    let existing: Vec<&str> = r.contents.iter().map(|(p, _)| p.as_str()).collect();
    if let Some((path, _)) = changes
        .new_files
        .iter()
        .find(|(p, _)| existing.contains(&p.as_str()))
    {
        let why =
            format!("{path} exists: change an existing file with a diff, not by writing it whole");
        return not_applied(a, why);
    }
    let mut diff = changes.diff.clone();
    if !diff.is_empty() && !diff.ends_with('\n') {
        diff.push('\n');
    }
    for (path, content) in &changes.new_files {
        diff.push_str(&new_file_diff(path, content));
    }
    let worktree = r.worktree.clone();
    a.context.record(
        "write",
        format!("a diff of {}", rp::diff_paths(&diff).join(", ")),
    );
    let request = ToolRequest::ApplyDiff { worktree, diff };
    call_tool(a, Phase::Applying, request)
}

/// A whole new file as a diff from nothing, so new files apply in the same all-or-none
/// step as the changes.
fn new_file_diff(path: &str, content: &str) -> String {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let mut d = format!(
        "--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
        lines.len()
    );
    for l in &lines {
        d.push('+');
        d.push_str(l);
    }
    if !content.is_empty() && !content.ends_with('\n') {
        d.push_str("\n\\ No newline at end of file\n");
    }
    d
}

fn applied(a: &mut Agent, outcome: ToolOutcome) -> Vec<Effect> {
    match outcome {
        ToolOutcome::Done {
            reply: ToolReply::Applied { files },
        } => {
            a.context
                .record("apply", format!("applied to {}", files.join(", ")));
            let r = repo(a);
            r.applied = true;
            r.feedback = None;
            // New files exist now: a later round changes them by diff like any other.
            for f in r.files.iter_mut() {
                if files.contains(&f.path) {
                    f.exists = true;
                }
            }
            r.checks.clear();
            r.cursor = 0;
            next_check(a)
        }
        ToolOutcome::Failed { error } => not_applied(a, format!("the diff did not apply: {error}")),
        ToolOutcome::Skipped { reason } => ended(
            a,
            ResultStatus::HardFail,
            format!("the diff could not be applied: {reason}"),
        ),
        ToolOutcome::Done { .. } => not_applied(a, "the apply step answered something else".into()),
    }
}

/// A diff that did not apply goes back to the writer with the failure, at most
/// `max_retries` times.
fn not_applied(a: &mut Agent, why: String) -> Vec<Effect> {
    let r = repo(a);
    if r.apply_retries >= r.limits.max_retries {
        let status = if r.applied {
            ResultStatus::SoftFail
        } else {
            ResultStatus::HardFail
        };
        let tries = r.apply_retries + 1;
        return ended(a, status, format!("{why} (after {tries} attempts)"));
    }
    r.apply_retries += 1;
    let n = r.apply_retries;
    r.feedback = Some(format!(
        "{why}\nThe files below are their current content; send a diff against exactly this."
    ));
    let mut effects = vec![Effect::Note {
        text: format!("{why}; sending it back to the writer (retry {n})"),
    }];
    effects.extend(read_files(a));
    effects
}

/// The checks to run after a change: lint, test, then each criterion's command.
pub(super) fn check_queue(r: &RepoWork) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some(l) = &r.commands.lint {
        q.push(("lint".to_string(), l.clone()));
    }
    if let Some(t) = &r.commands.test {
        q.push(("test".to_string(), t.clone()));
    }
    for c in &r.criteria {
        if let Some(check) = &c.check {
            q.push(("criterion".to_string(), check.clone()));
        }
    }
    q
}

pub(super) fn next_check(a: &mut Agent) -> Vec<Effect> {
    let r = repo(a);
    let queue = check_queue(r);
    if let Some((kind, command)) = queue.get(r.cursor).cloned() {
        let request = ToolRequest::RunCheck {
            worktree: r.worktree.clone(),
            kind,
            command,
            timeout_secs: r.limits.check_timeout_secs,
        };
        return call_tool(a, Phase::Checking, request);
    }
    checks_done(a)
}

fn checks_done(a: &mut Agent) -> Vec<Effect> {
    let r = repo(a);
    if r.commands.lint.is_none() {
        let line = "lint: no lint command was detected or configured".to_string();
        if !a.skipped.contains(&line) {
            a.skipped.push(line);
        }
    }
    let r = repo(a);
    if r.commands.test.is_none() {
        let line = "test: no test command was detected or configured".to_string();
        if !a.skipped.contains(&line) {
            a.skipped.push(line);
        }
    }
    let r = repo(a);
    let mut skipped = Vec::new();
    for c in &r.checks {
        if c.status == CheckStatus::Skipped && c.kind != "criterion" {
            skipped.push(format!("{}: {}", c.kind, c.reason));
        }
    }
    // Each criterion holds only when its own command ran and passed.
    let checks = r.checks.clone();
    for c in r.criteria.iter_mut() {
        let Some(command) = &c.check else {
            c.met = false;
            c.evidence = "no test or command was named to prove it".into();
            continue;
        };
        let ran = checks
            .iter()
            .find(|o| o.kind == "criterion" && &o.command == command);
        (c.met, c.evidence) = match ran {
            Some(o) if o.status == CheckStatus::Passed => (true, format!("passed: {command}")),
            Some(o) if o.status == CheckStatus::Failed => {
                (false, format!("failed: {command} ({})", o.reason))
            }
            Some(o) => (false, format!("skipped: {command} ({})", o.reason)),
            None => (false, format!("not run: {command}")),
        };
    }
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .map(|c| {
            format!(
                "`{}` failed ({}):\n{}",
                c.command,
                c.reason,
                tail(&c.output, 3000)
            )
        })
        .chain(
            r.criteria
                .iter()
                .filter(|c| !c.met)
                .map(|c| format!("criterion not proven: {} — {}", c.text, c.evidence)),
        )
        .collect();
    for line in skipped {
        if !a.skipped.contains(&line) {
            a.skipped.push(line);
        }
    }
    let r = repo(a);
    if failures.is_empty() {
        a.context
            .record("checks", "every check that could run passed");
        a.phase = Phase::Inspecting;
        a.pending = Some(Effect::InspectDiff);
        return vec![Effect::InspectDiff];
    }
    if r.check_retries < r.limits.max_retries {
        r.check_retries += 1;
        let n = r.check_retries;
        r.feedback = Some(format!(
            "After your change, these checks fail. Fix the code (not the tests, unless a test is wrong):\n{}",
            failures.join("\n\n")
        ));
        let to = if r.agent.is_some() {
            "the agent"
        } else {
            "the writer"
        };
        let mut effects = vec![Effect::Note {
            text: format!(
                "{} check(s) failed; sending the failures back to {to} (retry {n})",
                failures.len()
            ),
        }];
        if repo(a).agent.is_some() {
            effects.extend(run_agent(a));
        } else {
            effects.extend(read_files(a));
        }
        return effects;
    }
    let retries = r.limits.max_retries;
    let first = failures
        .first()
        .map(|f| f.lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    ended(
        a,
        ResultStatus::SoftFail,
        format!("checks still fail after {retries} retries: {first}"),
    )
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Ends the run with a result status; the reason starts with it.
pub(super) fn ended(a: &mut Agent, status: ResultStatus, why: String) -> Vec<Effect> {
    repo(a).result = Some(status);
    a.context
        .record("result", format!("{}: {why}", status.as_str()));
    finish(
        a,
        End::Failed {
            reason: format!("{}: {why}", status.as_str()),
        },
    )
}
