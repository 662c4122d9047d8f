//! The machine tested as data: events in, effects out, no IO.

use super::*;
use crate::engine::prompts::TaskBrief;
use crate::engine::tools::{Diagnostic, ExecReport, LintReport, ToolReply};
use crate::llm::{ModelRequest, offline_answer};

fn agent(budget: Micros) -> Agent {
    let limits = Limits::from_config(&crate::config::Config::default(), budget);
    Agent::new(
        TaskBrief {
            client_id: "acme".into(),
            title: "Write a Python hello world".into(),
            description: String::new(),
            stack: "python".into(),
        },
        limits,
    )
}

fn model_call(effects: &[Effect]) -> &ModelCall {
    effects
        .iter()
        .find_map(|e| {
            if let Effect::CallModel(c) = e {
                Some(c)
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("expected a model call in {effects:?}"))
}

fn tool_request(effects: &[Effect]) -> &ToolRequest {
    effects
        .iter()
        .find_map(|e| {
            if let Effect::CallTool { request } = e {
                Some(request)
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("expected a tool call in {effects:?}"))
}

/// The offline model's reply to a call, as the driver would feed it back.
fn reply(a: &mut Agent, effects: &[Effect], spent: Micros) -> Vec<Effect> {
    let c = model_call(effects).clone();
    let text = offline_answer(&ModelRequest {
        model: "m".into(),
        purpose: c.purpose,
        system: c.system.clone(),
        prompt: c.prompt.clone(),
        max_tokens: c.max_tokens,
    });
    a.handle(AgentEvent::ModelReplied {
        purpose: c.purpose,
        text,
        task_spent: spent,
    })
}

fn reply_text(a: &mut Agent, effects: &[Effect], text: &str) -> Vec<Effect> {
    let purpose = model_call(effects).purpose;
    a.handle(AgentEvent::ModelReplied {
        purpose,
        text: text.into(),
        task_spent: 0,
    })
}

fn done(reply: ToolReply) -> AgentEvent {
    AgentEvent::ToolReturned {
        outcome: ToolOutcome::Done { reply },
    }
}

fn skipped() -> AgentEvent {
    AgentEvent::ToolReturned {
        outcome: ToolOutcome::Skipped {
            reason: "no server configured".into(),
        },
    }
}

fn clean_lint() -> ToolReply {
    ToolReply::Lint(LintReport {
        linter: "ruff".into(),
        diagnostics: vec![],
        fixed_code: None,
    })
}

fn exec(passed: bool) -> ToolReply {
    ToolReply::Exec(ExecReport {
        stdout: "Hello, world!\n".into(),
        stderr: if passed {
            String::new()
        } else {
            "Traceback: boom".into()
        },
        exit_code: Some(if passed { 0 } else { 1 }),
        passed,
        duration_ms: 40,
        timed_out: false,
        oom_killed: false,
        output_truncated: false,
        container: "c0ffee".into(),
    })
}

/// Runs a one-subtask task from start to the approval gate with clean tools.
fn to_approval(a: &mut Agent) {
    let e = a.handle(AgentEvent::Start);
    let _ = reply(a, &e, 0); // plan -> retrieve
    let e = a.handle(done(ToolReply::Snippets { snippets: vec![] }));
    let e = reply(a, &e, 0); // write -> lint
    assert!(matches!(tool_request(&e), ToolRequest::Lint { .. }));
    let e = a.handle(done(clean_lint()));
    let e = {
        assert!(matches!(tool_request(&e), ToolRequest::Execute { .. }));
        a.handle(done(exec(true)))
    };
    let e = reply(a, &e, 0); // tests -> run tests
    assert!(matches!(tool_request(&e), ToolRequest::RunTests { .. }));
    let e = a.handle(done(exec(true)));
    let e = reply_text(a, &e, r#"{"score": 9, "issues": []}"#);
    assert_eq!(e, vec![Effect::AwaitApproval]);
}

#[test]
fn happy_path_walks_every_state_and_delivers() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let c = model_call(&e);
    assert_eq!((c.purpose, c.tier), (Purpose::Plan, Tier::Planner));
    assert_eq!(a.state(), AgentState::Planning);

    let e = reply(&mut a, &e, 10);
    assert_eq!(a.subtasks.len(), 1);
    assert!(
        matches!(tool_request(&e), ToolRequest::SearchSnippets { client_id, .. } if client_id == "acme")
    );
    let e = a.handle(done(ToolReply::Snippets { snippets: vec![] }));
    let c = model_call(&e);
    assert_eq!((c.purpose, c.tier), (Purpose::Write, Tier::Writer));
    assert_eq!(a.state(), AgentState::Coding);

    let _ = reply(&mut a, &e, 20);
    assert!(
        a.subtasks[0]
            .code
            .as_deref()
            .unwrap()
            .contains("Hello, world!")
    );
    let _ = a.handle(done(clean_lint()));
    assert_eq!(a.state(), AgentState::Testing);
    let e = a.handle(done(exec(true)));
    assert_eq!(model_call(&e).purpose, Purpose::Tests);
    let _ = reply(&mut a, &e, 30);
    let e = a.handle(done(exec(true)));
    let c = model_call(&e);
    assert_eq!((c.purpose, c.tier), (Purpose::Evaluate, Tier::Cheap));
    assert!(
        c.prompt
            .contains("lint: ok (ruff)\nexecution: passed (exit 0)\ntests: passed (exit 0)"),
        "{}",
        c.prompt
    );
    assert_eq!(a.state(), AgentState::Evaluating);

    let e = reply(&mut a, &e, 40);
    assert_eq!(e, vec![Effect::AwaitApproval]);
    assert_eq!(a.quality_score(), Some(9.0));

    let e = a.handle(AgentEvent::Approved);
    let Effect::Deliver { files } = &e[0] else {
        panic!("{e:?}")
    };
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["main.py", "test_main.py"]);
    assert_eq!(a.state(), AgentState::Delivering);

    let e = a.handle(AgentEvent::Delivered {
        url: "/tmp/T-1.tar.gz".into(),
    });
    assert!(
        matches!(tool_request(&e), ToolRequest::StoreSnippet { quality, .. } if *quality == 9.0)
    );
    let e = a.handle(done(ToolReply::Stored));
    assert_eq!(
        e,
        vec![Effect::Finish {
            end: End::Delivered
        }]
    );
    assert_eq!(
        a.visited,
        [
            AgentState::Pending,
            AgentState::Planning,
            AgentState::Coding,
            AgentState::Testing,
            AgentState::Evaluating,
            AgentState::AwaitingApproval,
            AgentState::Delivering,
            AgentState::Delivered
        ]
    );
    assert_eq!(a.iterations, 1);
    assert!(a.skipped.is_empty());
}

#[test]
fn lint_fixes_at_most_three_cycles_then_moves_on() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let _ = reply(&mut a, &e, 0);
    let e = a.handle(done(ToolReply::Snippets { snippets: vec![] }));
    let _ = reply(&mut a, &e, 0);
    let dirty = || {
        ToolReply::Lint(LintReport {
            linter: "ruff".into(),
            diagnostics: vec![Diagnostic {
                file: "main.py".into(),
                line: 1,
                column: 1,
                code: "E501".into(),
                message: "line too long".into(),
                severity: "warning".into(),
            }],
            fixed_code: Some("print('fixed')\n".into()),
        })
    };
    for cycle in 0..3 {
        let e = a.handle(done(dirty()));
        assert!(
            matches!(tool_request(&e), ToolRequest::FixLint { .. }),
            "cycle {cycle}: {e:?}"
        );
        let e = a.handle(done(dirty()));
        assert!(
            matches!(tool_request(&e), ToolRequest::Lint { code, .. } if code == "print('fixed')\n")
        );
    }
    let e = a.handle(done(dirty()));
    assert!(
        matches!(tool_request(&e), ToolRequest::Execute { .. }),
        "{e:?}"
    );
    assert_eq!(a.subtasks[0].lint_cycles, 3);
}

#[test]
fn low_scores_rewrite_at_most_three_times_with_the_issues() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let _ = reply(&mut a, &e, 0);
    let mut e = a.handle(skipped());
    let mut writes = 0;
    loop {
        let c = model_call(&e).clone();
        assert_eq!(c.purpose, Purpose::Write);
        if writes > 0 {
            assert!(
                c.prompt.contains("- no error handling"),
                "issues fed back: {}",
                c.prompt
            );
            assert!(c.prompt.contains("## Current code"));
        }
        writes += 1;
        let _ = reply(&mut a, &e, 0);
        let e2 = a.handle(skipped()); // lint
        let _ = e2;
        let e3 = a.handle(skipped()); // execute
        let e4 = reply(&mut a, &e3, 0); // tests
        let e5 = a.handle(skipped()); // run tests
        let _ = e4;
        e = reply_text(
            &mut a,
            &e5,
            r#"{"score": 3, "issues": ["no error handling"]}"#,
        );
        if e == vec![Effect::AwaitApproval] {
            break;
        }
        assert!(writes <= 4, "too many rewrites");
    }
    assert_eq!(writes, 4, "one write and three rewrites");
    assert_eq!(a.iterations, 4);
    assert_eq!(a.subtasks[0].rewrites, 3);
    assert_eq!(a.quality_score(), Some(3.0));
    assert_eq!(
        a.skipped,
        [
            "retrieve: no server configured",
            "lint: no server configured",
            "execute: no server configured",
            "test: no server configured"
        ]
    );
}

#[test]
fn planning_and_writing_move_to_the_cheap_model_at_seventy_percent() {
    let mut a = agent(1_000);
    let e = a.handle(AgentEvent::Start);
    let _ = reply(&mut a, &e, 699);
    let e = a.handle(skipped());
    assert_eq!(
        model_call(&e).tier,
        Tier::Writer,
        "69.9 % still uses the writer"
    );
    let e = reply(&mut a, &e, 700);
    assert!(
        e.iter()
            .any(|x| matches!(x, Effect::Note { text } if text.contains("70%"))),
        "{e:?}"
    );
    assert!(a.switched_to_cheap);
    let _ = a.handle(skipped());
    let e = a.handle(skipped());
    let c = model_call(&e);
    assert_eq!((c.purpose, c.tier), (Purpose::Tests, Tier::Cheap));
}

#[test]
fn task_budget_refusal_fails_the_run_with_reason_budget() {
    let mut a = agent(1_000);
    let e = a.handle(AgentEvent::Start);
    let purpose = model_call(&e).purpose;
    let e = a.handle(AgentEvent::ModelRefused {
        purpose,
        refusal: Refusal::TaskBudget {
            spent: 990,
            cap: 1_000,
        },
    });
    assert_eq!(
        e,
        vec![Effect::Finish {
            end: End::Failed {
                reason: "budget".into()
            }
        }]
    );
    assert_eq!(a.state(), AgentState::Failed);
    assert!(matches!(
        a.handle(AgentEvent::Start)[0],
        Effect::Invalid { .. }
    ));
}

#[test]
fn client_budget_refusal_pauses_and_resume_repeats_the_call() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let call = model_call(&e).clone();
    let e = a.handle(AgentEvent::ModelRefused {
        purpose: call.purpose,
        refusal: Refusal::ClientBudget {
            reason: "acme is over its monthly budget".into(),
        },
    });
    assert_eq!(
        e,
        vec![Effect::Pause {
            reason: "acme is over its monthly budget".into()
        }]
    );
    assert_eq!(a.state(), AgentState::Paused);
    let e = a.handle(AgentEvent::Resume);
    assert_eq!(e, vec![Effect::CallModel(call)]);
    assert_eq!(a.state(), AgentState::Planning);
}

#[test]
fn revise_sends_every_subtask_back_with_the_note_and_returns_to_approval() {
    let mut a = agent(1_000_000);
    to_approval(&mut a);
    let e = a.handle(AgentEvent::Revised {
        note: "print it twice".into(),
    });
    let c = model_call(&e);
    assert_eq!(c.purpose, Purpose::Write);
    assert!(
        c.prompt.contains("- operator: print it twice"),
        "{}",
        c.prompt
    );
    assert_eq!(a.state(), AgentState::Coding);
    assert_eq!(a.revisions, 1);
    let _ = reply(&mut a, &e, 0);
    assert!(
        a.subtasks[0]
            .code
            .as_deref()
            .unwrap()
            .contains("Revised for: operator: print it twice")
    );
    let _ = a.handle(done(clean_lint()));
    let e = a.handle(done(exec(true)));
    let _ = reply(&mut a, &e, 0);
    let e = a.handle(done(exec(true)));
    let e = reply_text(&mut a, &e, r#"{"score": 8, "issues": []}"#);
    assert_eq!(e, vec![Effect::AwaitApproval]);
    assert_eq!(a.iterations, 2);
    let visited = &a.visited;
    let approvals = visited
        .iter()
        .filter(|s| **s == AgentState::AwaitingApproval)
        .count();
    assert_eq!(approvals, 2, "{visited:?}");
}

#[test]
fn reject_ends_the_run_with_the_note() {
    let mut a = agent(1_000_000);
    to_approval(&mut a);
    let e = a.handle(AgentEvent::Rejected {
        note: "wrong language".into(),
    });
    assert_eq!(
        e,
        vec![Effect::Finish {
            end: End::Rejected {
                note: "wrong language".into()
            }
        }]
    );
    assert_eq!(a.state(), AgentState::Rejected);
}

#[test]
fn decisions_outside_the_gate_and_unexpected_replies_are_invalid() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Approved);
    assert!(
        matches!(&e[0], Effect::Invalid { why } if why.contains("approved") && why.contains("pending")),
        "{e:?}"
    );
    let _ = a.handle(AgentEvent::Start);
    let before = a.clone();
    let e = a.handle(AgentEvent::ModelReplied {
        purpose: Purpose::Evaluate,
        text: "{}".into(),
        task_spent: 0,
    });
    assert!(matches!(e[0], Effect::Invalid { .. }));
    assert_eq!(a, before, "an invalid event changes nothing");
}

#[test]
fn model_failures_are_retried_twice_then_fail_the_run() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let call = model_call(&e).clone();
    for _ in 0..2 {
        let e = a.handle(AgentEvent::ModelFailed {
            purpose: Purpose::Plan,
            error: "stream cut".into(),
            permanent: false,
        });
        assert_eq!(model_call(&e), &call);
    }
    let e = a.handle(AgentEvent::ModelFailed {
        purpose: Purpose::Plan,
        error: "stream cut".into(),
        permanent: false,
    });
    assert!(
        matches!(&e[0], Effect::Finish { end: End::Failed { reason } } if reason == "model: stream cut")
    );
}

#[test]
fn ten_subtasks_are_written_in_one_batched_call_with_fallback() {
    let plan = |n: usize| {
        let subs: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"title":"part {i}","language":"python","filename":"p{i}.py"}}"#))
            .collect();
        format!(r#"{{"stack":"python","subtasks":[{}]}}"#, subs.join(","))
    };
    // A good batch: every subtask gets code from one call and goes straight to lint.
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let mut e = reply_text(&mut a, &e, &plan(10));
    for _ in 0..10 {
        e = a.handle(skipped());
    }
    assert_eq!(model_call(&e).purpose, Purpose::WriteBatch);
    let e = reply(&mut a, &e, 0);
    assert!(matches!(tool_request(&e), ToolRequest::Lint { filename, .. } if filename == "p0.py"));
    assert_eq!(a.iterations, 10);
    let _ = a.handle(skipped());
    let e = a.handle(skipped());
    let _ = reply(&mut a, &e, 0);
    let e = a.handle(skipped());
    let e = reply_text(&mut a, &e, r#"{"score": 8, "issues": []}"#);
    assert!(
        matches!(tool_request(&e), ToolRequest::Lint { filename, .. } if filename == "p1.py"),
        "{e:?}"
    );

    // A malformed batch falls back to one call per subtask.
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let mut e = reply_text(&mut a, &e, &plan(10));
    for _ in 0..10 {
        e = a.handle(skipped());
    }
    let e = reply_text(&mut a, &e, "[{\"code\": \"only one\"}]");
    assert!(
        e.iter()
            .any(|x| matches!(x, Effect::Note { text } if text.contains("malformed")))
    );
    let c = model_call(&e);
    assert_eq!(c.purpose, Purpose::Write);
    assert!(c.prompt.contains("filename: p0.py"));

    // Nine subtasks are written one by one.
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let mut e = reply_text(&mut a, &e, &plan(9));
    for _ in 0..9 {
        e = a.handle(skipped());
    }
    assert_eq!(model_call(&e).purpose, Purpose::Write);
}

#[test]
fn a_checkpoint_resumes_with_the_pending_effect() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let e = reply(&mut a, &e, 0);
    let json = serde_json::to_string(&a).unwrap();
    let restored: Agent = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, a);
    assert_eq!(restored.resume_effects(), e);
    let mut waiting = agent(1_000_000);
    to_approval(&mut waiting);
    assert_eq!(waiting.resume_effects(), vec![Effect::AwaitApproval]);
}

#[test]
fn cancel_stops_any_live_phase_and_delivery_failure_returns_to_the_gate() {
    let mut a = agent(1_000_000);
    let _ = a.handle(AgentEvent::Start);
    assert_eq!(
        a.handle(AgentEvent::Cancel),
        vec![Effect::Finish {
            end: End::Cancelled
        }]
    );
    let mut b = agent(1_000_000);
    to_approval(&mut b);
    let _ = b.handle(AgentEvent::Approved);
    let e = b.handle(AgentEvent::DeliveryFailed {
        error: "disk full".into(),
    });
    assert_eq!(e.last(), Some(&Effect::AwaitApproval));
    assert_eq!(b.state(), AgentState::AwaitingApproval);
}

#[test]
fn unverified_steps_reach_the_evaluator_as_skipped() {
    let mut a = agent(1_000_000);
    let e = a.handle(AgentEvent::Start);
    let _ = reply(&mut a, &e, 0);
    let e = a.handle(skipped());
    let _ = reply(&mut a, &e, 0);
    let _ = a.handle(skipped());
    let e = a.handle(skipped());
    let _ = reply(&mut a, &e, 0);
    let e = a.handle(skipped());
    let c = model_call(&e);
    assert!(
        c.prompt
            .contains("execution: skipped (no server configured)"),
        "{}",
        c.prompt
    );
    let e = reply(&mut a, &e, 0);
    assert_eq!(e, vec![Effect::AwaitApproval]);
    assert_eq!(
        a.quality_score(),
        Some(7.0),
        "the offline evaluator caps unverified work at 7"
    );
    let issues = &a.subtasks[0].evaluation.as_ref().unwrap().issues;
    assert!(
        issues.iter().any(|i| i.contains("not verified")),
        "{issues:?}"
    );
}
