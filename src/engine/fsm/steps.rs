//! The transitions. Each function moves the machine and returns the effects to perform.

use super::{
    Agent, AgentEvent, DeliverableFile, Effect, End, ModelCall, Phase, Refusal, SubtaskWork, Tier,
};
use crate::engine::prompts::{self, Evaluation};
use crate::engine::tools::{ExecReport, LintReport, ToolOutcome, ToolReply, ToolRequest};
use crate::llm::Purpose;

pub(super) fn handle(a: &mut Agent, event: AgentEvent) -> Vec<Effect> {
    if a.is_done() {
        return invalid(a, &event);
    }
    if a.repo.is_some()
        && let Some(effects) = super::repo_steps::handle(a, &event)
    {
        return effects;
    }
    match (a.phase.clone(), event) {
        (_, AgentEvent::Cancel) => finish(a, End::Cancelled),
        (Phase::Pending, AgentEvent::Start) => {
            a.phase = Phase::Planning;
            vec![call_model(a, Purpose::Plan)]
        }
        (Phase::Paused { resume_to, .. }, AgentEvent::Resume) => {
            a.phase = *resume_to;
            a.resume_effects()
        }
        (_, AgentEvent::ModelRefused { purpose, refusal }) if expects_model(a, purpose) => {
            refused(a, refusal)
        }
        (
            _,
            AgentEvent::ModelFailed {
                purpose,
                error,
                permanent,
            },
        ) if expects_model(a, purpose) => model_failed(a, error, permanent),
        (
            _,
            AgentEvent::ModelReplied {
                purpose,
                text,
                task_spent,
            },
        ) if expects_model(a, purpose) => {
            a.pending = None;
            a.model_failures = 0;
            a.task_spent = task_spent;
            if a.repo.is_some() {
                return super::repo_steps::model_replied(a, purpose, &text);
            }
            model_replied(a, purpose, &text)
        }
        (Phase::Retrieving, AgentEvent::ToolReturned { outcome })
        | (Phase::Linting, AgentEvent::ToolReturned { outcome })
        | (Phase::FixingLint, AgentEvent::ToolReturned { outcome })
        | (Phase::Executing, AgentEvent::ToolReturned { outcome })
        | (Phase::Testing, AgentEvent::ToolReturned { outcome })
        | (Phase::Storing, AgentEvent::ToolReturned { outcome }) => {
            a.pending = None;
            tool_returned(a, outcome)
        }
        (Phase::AwaitingApproval, AgentEvent::Approved) => {
            a.phase = Phase::Delivering;
            a.context
                .record("decision", "operator approved the deliverable");
            let effect = Effect::Deliver {
                files: deliverable_files(a),
            };
            a.pending = Some(effect.clone());
            vec![effect]
        }
        (Phase::AwaitingApproval, AgentEvent::Revised { note }) => revise(a, note),
        (Phase::AwaitingApproval, AgentEvent::Rejected { note }) => {
            finish(a, End::Rejected { note })
        }
        (Phase::Delivering, AgentEvent::Delivered { url }) => {
            a.pending = None;
            a.deliverable = Some(url);
            a.phase = Phase::Storing;
            a.current = 0;
            next_store(a)
        }
        (Phase::Delivering, AgentEvent::DeliveryFailed { error }) => {
            a.pending = None;
            a.phase = Phase::AwaitingApproval;
            vec![
                Effect::Note {
                    text: if error.contains("approve again") {
                        format!("delivery failed: {error}")
                    } else {
                        format!("delivery failed: {error}; approve again to retry")
                    },
                },
                Effect::AwaitApproval,
            ]
        }
        (_, event) => invalid(a, &event),
    }
}

fn invalid(a: &Agent, event: &AgentEvent) -> Vec<Effect> {
    let name = serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".into());
    vec![Effect::Invalid {
        why: format!(
            "{name} does not apply while the run is {}",
            a.state().as_str()
        ),
    }]
}

fn expects_model(a: &Agent, purpose: Purpose) -> bool {
    matches!(&a.pending, Some(Effect::CallModel(c)) if c.purpose == purpose)
}

pub(super) fn finish(a: &mut Agent, end: End) -> Vec<Effect> {
    a.pending = None;
    a.phase = Phase::Done { end: end.clone() };
    vec![Effect::Finish { end }]
}

fn refused(a: &mut Agent, refusal: Refusal) -> Vec<Effect> {
    match refusal {
        Refusal::TaskBudget { spent, cap } => {
            a.task_spent = spent;
            a.context.record(
                "budget",
                format!("task budget reached ({spent} of {cap} micro-dollars)"),
            );
            finish(
                a,
                End::Failed {
                    reason: "budget".into(),
                },
            )
        }
        Refusal::ClientBudget { reason } => {
            // The pending call stays, so `Resume` makes it again.
            let resume_to = Box::new(a.phase.clone());
            a.phase = Phase::Paused {
                reason: reason.clone(),
                resume_to,
            };
            vec![Effect::Pause { reason }]
        }
    }
}

fn model_failed(a: &mut Agent, error: String, permanent: bool) -> Vec<Effect> {
    a.model_failures += 1;
    if permanent || a.model_failures > a.limits.model_retries {
        return finish(
            a,
            End::Failed {
                reason: format!("model: {error}"),
            },
        );
    }
    let retry = a.pending.clone();
    let mut effects = vec![Effect::Note {
        text: format!(
            "model call failed ({error}); retry {} of {}",
            a.model_failures, a.limits.model_retries
        ),
    }];
    effects.extend(retry);
    effects
}

/// The tier for planning and writing: the cheaper model once the task has spent the switch
/// share of its budget.
pub(super) fn working_tier(a: &Agent, tier: Tier) -> Tier {
    let cap = a.limits.task_budget as i128;
    let spent = a.task_spent as i128;
    if cap > 0 && spent * 100 >= cap * a.limits.switch_at_percent as i128 {
        Tier::Cheap
    } else {
        tier
    }
}

fn call_model(a: &mut Agent, purpose: Purpose) -> Effect {
    let task = &a.task;
    let l = &a.limits;
    let (tier, system, prompt, max_tokens) = match purpose {
        Purpose::Plan => (
            Tier::Planner,
            prompts::SYSTEM_PLANNER,
            prompts::plan_prompt(task),
            l.max_tokens_plan,
        ),
        Purpose::WriteBatch => {
            let specs: Vec<_> = a.subtasks.iter().map(|s| s.spec.clone()).collect();
            (
                Tier::Writer,
                prompts::SYSTEM_BATCH_WRITER,
                prompts::batch_prompt(task, &specs),
                l.max_tokens_batch,
            )
        }
        Purpose::Write => {
            let s = &a.subtasks[a.current];
            let mut issues: Vec<String> = a
                .revision_note
                .iter()
                .map(|n| format!("operator: {n}"))
                .collect();
            if let Some(e) = &s.evaluation {
                issues.extend(e.issues.iter().cloned());
            }
            let previous = if s.code.is_some() && !issues.is_empty() {
                s.code.as_deref()
            } else {
                None
            };
            let prompt = prompts::write_prompt(
                task,
                &s.spec,
                &s.snippets,
                &issues,
                &a.context.render(),
                previous,
            );
            (
                Tier::Writer,
                prompts::SYSTEM_WRITER,
                prompt,
                l.max_tokens_write,
            )
        }
        Purpose::Tests => {
            let s = &a.subtasks[a.current];
            let prompt = prompts::tests_prompt(task, &s.spec, s.code.as_deref().unwrap_or(""));
            (
                Tier::Writer,
                prompts::SYSTEM_TESTER,
                prompt,
                l.max_tokens_tests,
            )
        }
        Purpose::Evaluate => {
            let s = &a.subtasks[a.current];
            let prompt = prompts::evaluate_prompt(
                task,
                &s.spec,
                s.code.as_deref().unwrap_or(""),
                &evidence(s),
            );
            (
                Tier::Cheap,
                prompts::SYSTEM_EVALUATOR,
                prompt,
                l.max_tokens_evaluate,
            )
        }
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

pub(super) fn call_tool(a: &mut Agent, phase: Phase, request: ToolRequest) -> Vec<Effect> {
    a.phase = phase;
    let effect = Effect::CallTool { request };
    a.pending = Some(effect.clone());
    vec![effect]
}

/// Adds a note when the run first crosses the switch point.
pub(super) fn switch_note(a: &mut Agent) -> Option<Effect> {
    if !a.switched_to_cheap && working_tier(a, Tier::Writer) == Tier::Cheap {
        a.switched_to_cheap = true;
        let text = format!(
            "task at {}% of its budget: planning and writing move to the cheaper model",
            a.limits.switch_at_percent
        );
        a.context.record("budget", text.clone());
        return Some(Effect::Note { text });
    }
    None
}

fn model_replied(a: &mut Agent, purpose: Purpose, text: &str) -> Vec<Effect> {
    let mut effects: Vec<Effect> = switch_note(a).into_iter().collect();
    match purpose {
        Purpose::Plan => match prompts::parse_plan(text, &a.task.stack) {
            Ok(plan) => {
                a.approach = plan.approach;
                a.context.record(
                    "plan",
                    format!("planned {} subtask(s)", plan.subtasks.len()),
                );
                a.subtasks = plan.subtasks.into_iter().map(new_work).collect();
                a.current = 0;
                effects.extend(retrieve(a));
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
                effects.push(call_model(a, Purpose::Plan));
            }
        },
        Purpose::WriteBatch => match prompts::parse_batch(
            text,
            &a.subtasks
                .iter()
                .map(|s| s.spec.clone())
                .collect::<Vec<_>>(),
        ) {
            Some(codes) => {
                for (s, code) in a.subtasks.iter_mut().zip(codes) {
                    s.code = Some(code);
                    s.needs_write = false;
                }
                a.iterations += a.subtasks.len() as u32;
                a.context.record(
                    "write",
                    format!("wrote {} files in one batched call", a.subtasks.len()),
                );
                a.current = 0;
                effects.extend(check_current(a));
            }
            None => {
                a.context.record(
                    "write",
                    "batched reply did not fit; writing one file at a time",
                );
                effects.push(Effect::Note {
                    text: "the batched reply was malformed; falling back to one call per subtask"
                        .into(),
                });
                a.current = 0;
                a.phase = Phase::Writing;
                effects.push(call_model(a, Purpose::Write));
            }
        },
        Purpose::Write => {
            let code = prompts::extract_code(text);
            let s = &mut a.subtasks[a.current];
            a.context.record(
                "write",
                format!("wrote {} ({} lines)", s.spec.filename, code.lines().count()),
            );
            s.code = Some(code);
            s.needs_write = false;
            a.iterations += 1;
            effects.extend(check_current(a));
        }
        Purpose::Tests => {
            let s = &mut a.subtasks[a.current];
            s.tests = Some(prompts::extract_code(text));
            let request = ToolRequest::RunTests {
                language: s.spec.language.clone(),
                filename: s.spec.filename.clone(),
                code: s.code.clone().unwrap_or_default(),
                test_filename: s.spec.test_filename(),
                tests: s.tests.clone().unwrap_or_default(),
            };
            effects.extend(call_tool(a, Phase::Testing, request));
        }
        Purpose::Evaluate => effects.extend(evaluated(a, prompts::parse_evaluation(text))),
    }
    effects
}

pub(super) fn new_work(spec: prompts::SubtaskSpec) -> SubtaskWork {
    SubtaskWork {
        spec,
        snippets: Vec::new(),
        code: None,
        tests: None,
        needs_write: true,
        lint_cycles: 0,
        lint: None,
        exec: None,
        test: None,
        evaluation: None,
        rewrites: 0,
    }
}

fn retrieve(a: &mut Agent) -> Vec<Effect> {
    let s = &a.subtasks[a.current];
    let request = ToolRequest::SearchSnippets {
        client_id: a.task.client_id.clone(),
        query: format!("{}: {}", s.spec.title, s.spec.description),
        language: s.spec.language.clone(),
        limit: 3,
    };
    call_tool(a, Phase::Retrieving, request)
}

/// Writing starts once every subtask has its examples: one batched call for many subtasks.
fn start_writing(a: &mut Agent) -> Vec<Effect> {
    a.current = 0;
    if a.subtasks.len() >= a.limits.batch_threshold && !a.batch_tried {
        a.batch_tried = true;
        a.phase = Phase::WritingBatch;
        return vec![call_model(a, Purpose::WriteBatch)];
    }
    a.phase = Phase::Writing;
    vec![call_model(a, Purpose::Write)]
}

/// Lints the current subtask's fresh code.
fn check_current(a: &mut Agent) -> Vec<Effect> {
    let s = &mut a.subtasks[a.current];
    s.lint_cycles = 0;
    let request = ToolRequest::Lint {
        language: s.spec.language.clone(),
        filename: s.spec.filename.clone(),
        code: s.code.clone().unwrap_or_default(),
    };
    call_tool(a, Phase::Linting, request)
}

pub(super) fn note_skip(a: &mut Agent, step: &str, outcome: &ToolOutcome) {
    if let ToolOutcome::Skipped { reason } = outcome {
        let line = format!("{step}: {reason}");
        if !a.skipped.contains(&line) {
            a.skipped.push(line);
        }
    }
}

fn tool_returned(a: &mut Agent, outcome: ToolOutcome) -> Vec<Effect> {
    let phase = a.phase.clone();
    match phase {
        Phase::Retrieving => {
            note_skip(a, "retrieve", &outcome);
            if let ToolOutcome::Done {
                reply: ToolReply::Snippets { snippets },
            } = outcome
            {
                a.context.record(
                    "retrieve",
                    format!("found {} similar snippet(s)", snippets.len()),
                );
                a.subtasks[a.current].snippets = snippets;
            }
            if a.current + 1 < a.subtasks.len() {
                a.current += 1;
                retrieve(a)
            } else {
                start_writing(a)
            }
        }
        Phase::Linting => {
            note_skip(a, "lint", &outcome);
            let problems = match &outcome {
                ToolOutcome::Done {
                    reply: ToolReply::Lint(r),
                } => r.diagnostics.len(),
                _ => 0,
            };
            let s = &mut a.subtasks[a.current];
            let fname = s.spec.filename.clone();
            let cycles = s.lint_cycles;
            s.lint = Some(outcome);
            if problems > 0 && cycles < a.limits.max_lint_cycles {
                a.context.record(
                    "lint",
                    format!("lint {fname}: {problems} problem(s); fixing"),
                );
                let request = ToolRequest::FixLint {
                    language: s.spec.language.clone(),
                    filename: fname,
                    code: s.code.clone().unwrap_or_default(),
                };
                return call_tool(a, Phase::FixingLint, request);
            }
            a.context
                .record("lint", format!("lint {fname}: {problems} problem(s)"));
            execute(a)
        }
        Phase::FixingLint => {
            note_skip(a, "fix_lint", &outcome);
            let s = &mut a.subtasks[a.current];
            s.lint_cycles += 1;
            match outcome {
                ToolOutcome::Done {
                    reply:
                        ToolReply::Lint(LintReport {
                            fixed_code: Some(code),
                            ..
                        }),
                } => {
                    s.code = Some(code);
                    let request = ToolRequest::Lint {
                        language: s.spec.language.clone(),
                        filename: s.spec.filename.clone(),
                        code: s.code.clone().unwrap_or_default(),
                    };
                    call_tool(a, Phase::Linting, request)
                }
                _ => execute(a),
            }
        }
        Phase::Executing => {
            note_skip(a, "execute", &outcome);
            let s = &mut a.subtasks[a.current];
            a.context.record(
                "execute",
                format!("executed {}: {}", s.spec.filename, verdict(&outcome)),
            );
            s.exec = Some(outcome);
            a.phase = Phase::WritingTests;
            vec![call_model(a, Purpose::Tests)]
        }
        Phase::Testing => {
            note_skip(a, "test", &outcome);
            let s = &mut a.subtasks[a.current];
            a.context.record(
                "test",
                format!("tests of {}: {}", s.spec.filename, verdict(&outcome)),
            );
            s.test = Some(outcome);
            a.phase = Phase::Evaluating;
            vec![call_model(a, Purpose::Evaluate)]
        }
        Phase::Storing => {
            note_skip(a, "store", &outcome);
            a.current += 1;
            next_store(a)
        }
        _ => vec![],
    }
}

fn execute(a: &mut Agent) -> Vec<Effect> {
    let s = &a.subtasks[a.current];
    let request = ToolRequest::Execute {
        language: s.spec.language.clone(),
        filename: s.spec.filename.clone(),
        code: s.code.clone().unwrap_or_default(),
    };
    call_tool(a, Phase::Executing, request)
}

fn exec_verdict(r: &ExecReport) -> String {
    if r.timed_out {
        return "failed (timed out)".into();
    }
    if r.oom_killed {
        return "failed (out of memory)".into();
    }
    let code = r
        .exit_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "none".into());
    if r.passed {
        format!("passed (exit {code})")
    } else {
        let first = r
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        format!(
            "failed (exit {code}{}{})",
            if first.is_empty() { "" } else { ": " },
            first.chars().take(160).collect::<String>()
        )
    }
}

fn verdict(outcome: &ToolOutcome) -> String {
    match outcome {
        ToolOutcome::Done {
            reply: ToolReply::Exec(r),
        } => exec_verdict(r),
        ToolOutcome::Done {
            reply: ToolReply::Lint(r),
        } if r.diagnostics.is_empty() => format!("ok ({})", r.linter),
        ToolOutcome::Done {
            reply: ToolReply::Lint(r),
        } => format!("problems ({} left, {})", r.diagnostics.len(), r.linter),
        ToolOutcome::Done { .. } => "ok".into(),
        ToolOutcome::Skipped { reason } => format!("skipped ({reason})"),
        ToolOutcome::Failed { error } => format!("failed ({error})"),
    }
}

/// The evidence lines the evaluator is shown.
pub(crate) fn evidence(s: &SubtaskWork) -> Vec<String> {
    let line = |what: &str, o: &Option<ToolOutcome>| {
        format!(
            "{what}: {}",
            o.as_ref()
                .map(verdict)
                .unwrap_or_else(|| "skipped (not reached)".into())
        )
    };
    vec![
        line("lint", &s.lint),
        line("execution", &s.exec),
        line("tests", &s.test),
    ]
}

fn evaluated(a: &mut Agent, evaluation: Evaluation) -> Vec<Effect> {
    let pass = a.limits.pass_score;
    let max_rewrites = a.limits.max_rewrites;
    let s = &mut a.subtasks[a.current];
    let score = evaluation.score;
    a.context.record(
        "evaluate",
        format!("evaluated {}: {score}/10", s.spec.filename),
    );
    s.evaluation = Some(evaluation);
    if score < pass && s.rewrites < max_rewrites {
        s.rewrites += 1;
        s.needs_write = true;
        a.context.record(
            "rewrite",
            format!(
                "rewriting {} (attempt {} of {max_rewrites})",
                s.spec.filename, s.rewrites
            ),
        );
        a.phase = Phase::Writing;
        return vec![call_model(a, Purpose::Write)];
    }
    next_subtask(a)
}

fn next_subtask(a: &mut Agent) -> Vec<Effect> {
    if a.current + 1 < a.subtasks.len() {
        a.current += 1;
        if a.subtasks[a.current].needs_write {
            a.phase = Phase::Writing;
            return vec![call_model(a, Purpose::Write)];
        }
        return check_current(a);
    }
    a.phase = Phase::AwaitingApproval;
    a.pending = None;
    vec![Effect::AwaitApproval]
}

fn revise(a: &mut Agent, note: String) -> Vec<Effect> {
    a.revisions += 1;
    a.context
        .record("decision", format!("operator asked for a revision: {note}"));
    a.revision_note = Some(note);
    for s in &mut a.subtasks {
        s.needs_write = true;
        s.rewrites = 0;
    }
    a.current = 0;
    a.phase = Phase::Writing;
    vec![call_model(a, Purpose::Write)]
}

fn next_store(a: &mut Agent) -> Vec<Effect> {
    let pass = a.limits.pass_score;
    while a.current < a.subtasks.len() {
        let s = &a.subtasks[a.current];
        let score = s.evaluation.as_ref().map(|e| e.score).unwrap_or(0.0);
        if score >= pass {
            let request = ToolRequest::StoreSnippet {
                client_id: a.task.client_id.clone(),
                language: s.spec.language.clone(),
                description: s.spec.title.clone(),
                code: s.code.clone().unwrap_or_default(),
                quality: score,
            };
            return call_tool(a, Phase::Storing, request);
        }
        a.current += 1;
    }
    finish(a, End::Delivered)
}

/// The files handed over on approval: each subtask's code and tests.
pub fn deliverable_files(a: &Agent) -> Vec<DeliverableFile> {
    let mut files = Vec::new();
    for s in &a.subtasks {
        if let Some(code) = &s.code {
            files.push(DeliverableFile {
                path: s.spec.filename.clone(),
                content: code.clone(),
            });
        }
        if let Some(tests) = &s.tests {
            files.push(DeliverableFile {
                path: s.spec.test_filename(),
                content: tests.clone(),
            });
        }
    }
    // A React Native task's components become a runnable Expo project.
    if a.task.stack == "react-native" {
        let project = crate::engine::expo::project_files(&a.task.title, &files);
        files.extend(project);
    }
    files
}
