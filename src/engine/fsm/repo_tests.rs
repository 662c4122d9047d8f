//! A repository run tested as data: the harness decides every result.

use super::repo::{RepoCommands, RepoWork};
use super::*;
use crate::engine::prompts::TaskBrief;
use crate::engine::tools::ToolReply;
use crate::llm::{ModelRequest, offline_answer};
use crate::repo::{CheckOutcome, CheckStatus, DiffSummary, FileChange, ResultStatus, RiskReport};

fn agent(criteria: &[&str]) -> Agent {
    let config = crate::config::Config::default();
    let mut a = Agent::new(
        TaskBrief {
            client_id: "acme".into(),
            title: "Add a shout flag".into(),
            description: String::new(),
            stack: "python".into(),
        },
        Limits::from_config(&config, 1_000_000),
    );
    let criteria: Vec<String> = criteria.iter().map(|c| c.to_string()).collect();
    a.repo = Some(RepoWork::new(&criteria, &config.repos));
    a
}

fn ready(a: &mut Agent, test: Option<&str>) -> Vec<Effect> {
    assert_eq!(a.handle(AgentEvent::Start), vec![Effect::PrepareRepo]);
    a.handle(AgentEvent::RepoReady {
        worktree: "T-0001-r1".into(),
        branch: "agt/T-0001".into(),
        base_branch: "main".into(),
        base_commit: "0123456789abcdef".into(),
        commands: RepoCommands {
            test: test.map(str::to_string),
            source: "tests".into(),
            ..RepoCommands::default()
        },
    })
}

fn check(kind: &str, command: &str, status: CheckStatus) -> AgentEvent {
    AgentEvent::ToolReturned {
        outcome: ToolOutcome::Done {
            reply: ToolReply::Check(CheckOutcome {
                kind: kind.into(),
                command: command.into(),
                status,
                reason: if status == CheckStatus::Failed {
                    "exit 1".into()
                } else {
                    String::new()
                },
                output: "FAIL: test_shout".into(),
                duration_ms: 5,
            }),
        },
    }
}

fn text(t: &str) -> AgentEvent {
    AgentEvent::ToolReturned {
        outcome: ToolOutcome::Done {
            reply: ToolReply::Text {
                text: t.into(),
                truncated: false,
            },
        },
    }
}

fn request(effects: &[Effect]) -> ToolRequest {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::CallTool { request } => Some(request.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected a tool call in {effects:?}"))
}

fn offline(a: &mut Agent, effects: &[Effect]) -> Vec<Effect> {
    let c = effects
        .iter()
        .find_map(|e| match e {
            Effect::CallModel(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected a model call in {effects:?}"));
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
        task_spent: 0,
    })
}

/// From a ready worktree whose base passes, up to the first apply.
fn to_apply(a: &mut Agent) -> Vec<Effect> {
    let e = ready(a, Some("python3 -m unittest"));
    assert!(matches!(request(&e), ToolRequest::RunCheck { ref kind, .. } if kind == "smoke"));
    let e = a.handle(check("smoke", "python3 -m unittest", CheckStatus::Passed));
    assert!(matches!(request(&e), ToolRequest::RepoStructure { .. }));
    let e = a.handle(text(
        "greet/cli.py (9 lines): greet, main\ntests/test_cli.py (5 lines)\n",
    ));
    assert!(matches!(request(&e), ToolRequest::SearchCode { .. }));
    let e = a.handle(text("greet/cli.py:3: def greet(name):\n"));
    assert_eq!(a.phase, Phase::Planning);
    let e = offline(a, &e);
    assert_eq!(
        request(&e),
        ToolRequest::ReadFile {
            worktree: "T-0001-r1".into(),
            path: "greet/cli.py".into()
        }
    );
    let e = a.handle(text("def greet(name):\n    return name\n"));
    assert!(matches!(request(&e), ToolRequest::SearchSnippets { .. }));
    let e = a.handle(
        ToolOutcome::Skipped {
            reason: "no vector-code".into(),
        }
        .into_event(),
    );
    let e = offline(a, &e);
    let ToolRequest::ApplyDiff { diff, .. } = request(&e) else {
        panic!("expected an apply in {e:?}")
    };
    assert!(
        diff.contains("+++ b/greet/cli.py")
            && diff.contains("+++ b/tests/test_add_a_shout_flag.py")
    );
    e
}

impl ToolOutcome {
    fn into_event(self) -> AgentEvent {
        AgentEvent::ToolReturned { outcome: self }
    }
}

/// Answers every read until the writer is asked.
fn read_all(a: &mut Agent, mut e: Vec<Effect>) -> Vec<Effect> {
    while let Some(Effect::CallTool {
        request: ToolRequest::ReadFile { .. },
    }) = e.iter().find(|x| matches!(x, Effect::CallTool { .. }))
    {
        e = a.handle(text("def greet(name):\n    return name\n"));
    }
    e
}

fn applied() -> AgentEvent {
    ToolOutcome::Done {
        reply: ToolReply::Applied {
            files: vec![
                "greet/cli.py".into(),
                "tests/test_add_a_shout_flag.py".into(),
            ],
        },
    }
    .into_event()
}

#[test]
fn a_broken_base_stops_before_any_model_call() {
    let mut a = agent(&[]);
    ready(&mut a, Some("python3 -m unittest"));
    let e = a.handle(check("smoke", "python3 -m unittest", CheckStatus::Failed));
    assert!(!e.iter().any(|e| matches!(e, Effect::CallModel(_))));
    let Phase::Done {
        end: End::Failed { reason },
    } = &a.phase
    else {
        panic!("expected failed, got {:?}", a.phase)
    };
    assert!(reason.starts_with("broken_base:"), "{reason}");
}

#[test]
fn success_proves_each_criterion_then_waits_for_approval() {
    let mut a = agent(&["it can shout"]);
    to_apply(&mut a);
    let e = a.handle(applied());
    // The test command, then the criterion's own command.
    assert!(matches!(request(&e), ToolRequest::RunCheck { ref kind, .. } if kind == "test"));
    let e = a.handle(check("test", "python3 -m unittest", CheckStatus::Passed));
    let ToolRequest::RunCheck { kind, command, .. } = request(&e) else {
        panic!()
    };
    assert_eq!(kind, "criterion");
    assert_eq!(
        command,
        "python3 -m unittest -q tests.test_add_a_shout_flag"
    );
    let e = a.handle(check("criterion", &command, CheckStatus::Passed));
    assert_eq!(e, vec![Effect::InspectDiff]);
    let e = a.handle(AgentEvent::DiffInspected {
        diff: DiffSummary {
            base_commit: "0123".into(),
            files: vec![FileChange {
                path: "greet/cli.py".into(),
                status: "modified".into(),
                added: 4,
                removed: 0,
                binary: false,
            }],
            patch: "--- a/greet/cli.py\n+++ b/greet/cli.py\n".into(),
            patch_truncated: false,
        },
        risk: RiskReport::default(),
    });
    let e = offline(&mut a, &e);
    assert_eq!(e, vec![Effect::AwaitApproval]);
    let r = a.repo.as_ref().unwrap();
    assert_eq!(r.result, Some(ResultStatus::Success));
    assert!(r.criteria[0].met, "{:?}", r.criteria);
    assert!(r.criteria[0].evidence.starts_with("passed: "));
    assert!(
        r.files.iter().all(|f| f.exists),
        "new files exist after the apply"
    );
    // Approval delivers the branch; a failed push leaves it approvable with the commit kept.
    let e = a.handle(AgentEvent::Approved);
    assert_eq!(e, vec![Effect::Deliver { files: vec![] }]);
    a.handle(AgentEvent::DeliveryProgress {
        commit: Some("abc".into()),
        pushed: false,
    });
    a.handle(AgentEvent::DeliveryFailed {
        error: "push refused".into(),
    });
    assert_eq!(a.phase, Phase::AwaitingApproval);
    assert_eq!(a.repo.as_ref().unwrap().commit.as_deref(), Some("abc"));
    a.handle(AgentEvent::Approved);
    let e = a.handle(AgentEvent::Delivered {
        url: "https://github.com/acme/site/pull/1".into(),
    });
    assert!(matches!(
        e[..],
        [Effect::Finish {
            end: End::Delivered
        }]
    ));
    assert_eq!(
        a.deliverable.as_deref(),
        Some("https://github.com/acme/site/pull/1")
    );
}

#[test]
fn a_diff_that_never_applies_is_a_hard_fail() {
    let mut a = agent(&[]);
    let mut e = to_apply(&mut a);
    for round in 0..=2 {
        assert!(
            matches!(request(&e), ToolRequest::ApplyDiff { .. }),
            "round {round}"
        );
        e = a.handle(
            ToolOutcome::Failed {
                error: "hunk 1 of greet/cli.py does not match".into(),
            }
            .into_event(),
        );
        if a.is_done() {
            break;
        }
        // The failure goes back to the writer with the file's current content.
        assert!(matches!(request(&e), ToolRequest::ReadFile { .. }));
        e = a.handle(text("def greet(name):\n    return name\n"));
        let c = e.iter().find_map(|x| match x {
            Effect::CallModel(c) => Some(c.clone()),
            _ => None,
        });
        assert!(c.unwrap().prompt.contains("does not match"));
        e = offline(&mut a, &e);
    }
    let Phase::Done {
        end: End::Failed { reason },
    } = &a.phase
    else {
        panic!("expected failed, got {:?}", a.phase)
    };
    assert!(reason.starts_with("HARD_FAIL:"), "{reason}");
    assert_eq!(
        a.repo.as_ref().unwrap().result,
        Some(ResultStatus::HardFail)
    );
}

#[test]
fn failing_tests_after_the_retries_are_a_soft_fail() {
    let mut a = agent(&[]);
    to_apply(&mut a);
    let mut e = a.handle(applied());
    for _ in 0..=2 {
        e = a.handle(check("test", "python3 -m unittest", CheckStatus::Failed));
        if a.is_done() {
            break;
        }
        e = read_all(&mut a, e);
        let c = e.iter().find_map(|x| match x {
            Effect::CallModel(c) => Some(c.clone()),
            _ => None,
        });
        assert!(
            c.unwrap().prompt.contains("FAIL: test_shout"),
            "the output is fed back"
        );
        offline(&mut a, &e);
        e = a.handle(applied());
    }
    let _ = e;
    let Phase::Done {
        end: End::Failed { reason },
    } = &a.phase
    else {
        panic!("expected failed, got {:?}", a.phase)
    };
    assert!(reason.starts_with("SOFT_FAIL:"), "{reason}");
}

#[test]
fn a_revision_continues_in_the_same_worktree_with_the_note() {
    let mut a = agent(&[]);
    to_apply(&mut a);
    a.handle(applied());
    let e = a.handle(check("test", "python3 -m unittest", CheckStatus::Passed));
    assert_eq!(e, vec![Effect::InspectDiff]);
    let e = a.handle(AgentEvent::DiffInspected {
        diff: DiffSummary {
            base_commit: "0123".into(),
            files: vec![FileChange {
                path: "greet/cli.py".into(),
                status: "modified".into(),
                added: 4,
                removed: 0,
                binary: false,
            }],
            patch: "+x\n".into(),
            patch_truncated: false,
        },
        risk: RiskReport::default(),
    });
    offline(&mut a, &e);
    assert_eq!(a.phase, Phase::AwaitingApproval);
    let e = a.handle(AgentEvent::Revised {
        note: "name it shout".into(),
    });
    // Both planned files are read again from the same worktree, then the writer sees the note.
    let ToolRequest::ReadFile { worktree, .. } = request(&e) else {
        panic!("expected a read in {e:?}")
    };
    assert_eq!(worktree, "T-0001-r1");
    let e = read_all(&mut a, e);
    let c = e
        .iter()
        .find_map(|x| match x {
            Effect::CallModel(c) => Some(c.clone()),
            _ => None,
        })
        .expect("the writer is asked again");
    assert!(c.prompt.contains("name it shout"));
    assert!(c.prompt.contains("(change)") && !c.prompt.contains("(create)"));
    let e = offline(&mut a, &e);
    let ToolRequest::ApplyDiff { worktree, diff } = request(&e) else {
        panic!("expected an apply in {e:?}")
    };
    assert_eq!(worktree, "T-0001-r1");
    assert!(
        !diff.contains("/dev/null"),
        "the test file now exists: {diff}"
    );
    assert_eq!(a.repo.as_ref().unwrap().branch, "agt/T-0001");
}

fn skipped(reason: &str) -> AgentEvent {
    AgentEvent::ToolReturned {
        outcome: ToolOutcome::Skipped {
            reason: reason.into(),
        },
    }
}

#[test]
fn a_repository_that_cannot_be_read_is_planned_without_its_outline() {
    // No code-context server: the outline and the search are both skipped. The run goes
    // on to the planner once (it used to ask for the search again and again).
    let mut a = agent(&[]);
    let e = ready(&mut a, None);
    assert!(matches!(request(&e), ToolRequest::RepoStructure { .. }));
    let e = a.handle(skipped("no code-context server configured"));
    assert!(matches!(request(&e), ToolRequest::SearchCode { .. }));
    let e = a.handle(skipped("no code-context server configured"));
    assert!(
        e.iter().any(|e| matches!(e, Effect::CallModel(_))),
        "the planner is asked: {e:?}"
    );
    assert_eq!(a.phase, Phase::Planning);
}

fn agent_of(kind: &str) -> Agent {
    let mut a = agent(&[]);
    if let Some(r) = a.repo.as_mut() {
        r.agent = Some(kind.into());
    }
    a
}

fn prompt_of(effects: &[Effect]) -> String {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::RunAgent { prompt, .. } => Some(prompt.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected the agent to be run in {effects:?}"))
}

#[test]
fn a_third_party_agent_writes_the_change_and_the_checks_judge_it() {
    // With a test command: the smoke check first, then the agent with the checks it
    // will be judged by.
    let mut a = agent_of("claude-code");
    let e = ready(&mut a, Some("python -m pytest"));
    assert!(matches!(request(&e), ToolRequest::RunCheck { .. }));
    let e = a.handle(check("smoke", "python -m pytest", CheckStatus::Passed));
    let prompt = prompt_of(&e);
    assert!(prompt.contains("Add a shout flag") && prompt.contains("`python -m pytest`"));
    assert_eq!(a.phase, Phase::AgentWorking);
    // Its change fails the tests: back to the agent with the failure.
    let e = a.handle(AgentEvent::AgentExited {
        ok: true,
        reason: "Done.".into(),
        changed: vec!["greet/cli.py".into()],
    });
    assert!(matches!(request(&e), ToolRequest::RunCheck { .. }));
    let e = a.handle(check("test", "python -m pytest", CheckStatus::Failed));
    let prompt = prompt_of(&e);
    assert!(
        prompt.contains("Feedback on the previous attempt") && prompt.contains("FAIL: test_shout")
    );
    // Fixed: the diff is inspected on the way to the gate.
    a.handle(AgentEvent::AgentExited {
        ok: true,
        reason: "Fixed.".into(),
        changed: vec!["greet/cli.py".into()],
    });
    a.handle(check("test", "python -m pytest", CheckStatus::Passed));
    assert_eq!(a.phase, Phase::Inspecting);
    assert_eq!(a.repo.as_ref().map(|r| r.agent_runs), Some(2));
}

#[test]
fn an_agent_that_fails_or_changes_nothing_ends_the_run() {
    // No test command: straight from the worktree to the agent.
    let mut a = agent_of("codex");
    let e = ready(&mut a, None);
    prompt_of(&e);
    a.handle(AgentEvent::AgentExited {
        ok: false,
        reason: "Codex's turn failed: idle timeout".into(),
        changed: vec![],
    });
    assert!(matches!(
        &a.phase,
        Phase::Done { end: End::Failed { reason } } if reason.starts_with("HARD_FAIL: codex failed: Codex's turn failed")
    ));
    let mut a = agent_of("aider");
    let e = ready(&mut a, None);
    prompt_of(&e);
    a.handle(AgentEvent::AgentExited {
        ok: true,
        reason: "Done.".into(),
        changed: vec![],
    });
    assert!(matches!(
        &a.phase,
        Phase::Done { end: End::Failed { reason } } if reason.contains("changed nothing")
    ));
    assert_eq!(
        a.repo.as_ref().and_then(|r| r.result),
        Some(ResultStatus::HardFail)
    );
}
