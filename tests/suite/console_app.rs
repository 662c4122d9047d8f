//! The console driven by injected events: real supervisor events and keys in, effects out,
//! performed by the test as the loop would. And the loop itself, counting frames.

use crate::common;

use ecca::config::ProviderKind;
use ecca::console::app::{App, Effect, View};
use ecca::console::keymap::Keymap;
use ecca::console::link::{Events, Link};
use ecca::console::model::load_detail;
use ecca::console::theme::Theme;
use ecca::console::{event_loop, render, svg};
use ecca::domain::TaskStatus;
use ecca::supervisor::{Command, Delivery, Event};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::time::Duration;

use common::console::{app_for, key, perform, pump, supervisor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_streaming_to_completion_fills_the_panes() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 150, 4096).await;
    let mut sub = sup.subscribe();
    let mut app = app_for(&sup);
    // Launch from the New task form, by keys.
    let e = app.key(key('n'));
    perform(&mut app, &sup, e).await;
    assert_eq!(app.view, View::NewTask);
    for c in "Write a Python hello world".chars() {
        let e = app.key(key(c));
        perform(&mut app, &sup, e).await;
    }
    let launch = app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert!(
        matches!(&launch[..], [Effect::Send(Command::StartTask { task })] if task.title == "Write a Python hello world" && task.client_id == "acme")
    );
    perform(&mut app, &sup, launch).await;
    assert_eq!(app.view, View::Runs);

    pump(&mut app, &sup, &mut sub, |a| {
        a.rows.iter().any(|r| r.state == "coding")
    })
    .await;
    // Open the run while it works: its output streams into the Output pane.
    let e = app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    perform(&mut app, &sup, e).await;
    assert_eq!(app.view, View::Detail);
    let lines_at_open = app.detail.loaded.as_ref().unwrap().output.len();
    pump(&mut app, &sup, &mut sub, |a| {
        a.rows[0].status == TaskStatus::AwaitingApproval
            && a.detail.loaded.as_ref().is_some_and(|d| !d.diff.is_empty())
    })
    .await;
    let d = app.detail.loaded.as_ref().unwrap();
    assert!(
        d.output.len() > lines_at_open,
        "output grew while the run streamed"
    );
    assert!(
        d.timeline
            .iter()
            .any(|e| e.text.starts_with("awaiting_approval")),
        "{:?}",
        d.timeline
    );
    assert!(
        d.diff.iter().any(|l| l == "+    print(message)"),
        "{:?}",
        d.diff
    );
    assert_eq!(app.rows[0].iteration, 1);
    assert!(app.rows[0].cost > 0 && app.rows[0].tokens > 0);

    app.detail.pane = 1; // Diff
    let screen = svg::text(&render(&app, 160, 48).unwrap());
    assert!(
        screen.contains("+++ b/main.py") && screen.contains("Hello, world!"),
        "{screen}"
    );
    assert!(screen.contains("task  ["), "the cost meter is drawn");
    app.detail.pane = 2; // Lint: no tool servers here, so it says skipped
    let screen = svg::text(&render(&app, 160, 48).unwrap());
    assert!(
        screen.contains("skipped: no linter server configured"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_is_told_and_recovers_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 16).await;
    let mut sub = sup.subscribe();
    let mut app = app_for(&sup);
    // The console reads nothing while a run streams far more than 16 events.
    let started = sup
        .execute(Command::StartTask {
            task: ecca::supervisor::NewTask {
                client_id: "acme".into(),
                title: "Write a Python hello world".into(),
                description: String::new(),
                stack: "python".into(),
                source: "manual".into(),
                agent_kind: "builtin".into(),
                budget_micros: None,
                provider: Some(ProviderKind::Offline),
                base_branch: None,
                price_micros: None,
                acceptance: Vec::new(),
            },
        })
        .await
        .unwrap();
    let ecca::supervisor::Reply::TaskStarted { task_id, .. } = started else {
        panic!()
    };
    sup.wait_settled(&task_id).await.unwrap();
    let first = sub.next().await.unwrap();
    let Delivery::Lagged { missed } = first else {
        panic!("expected a lag signal, got {first:?}")
    };
    assert!(missed > 0);
    let effects = app.apply(&first);
    assert!(effects.contains(&Effect::ReloadRows));
    assert!(
        app.notice
            .as_ref()
            .unwrap()
            .0
            .contains(&format!("fell {missed} updates behind"))
    );
    perform(&mut app, &sup, effects).await;
    // Recovered: the row is right although the events that moved it were missed.
    let row = app.rows.iter().find(|r| r.task_id == task_id).unwrap();
    assert_eq!(row.status, TaskStatus::AwaitingApproval);
    assert!(row.cost > 0);
    // And it keeps up from here on: once it has read what the run left on the bus (which
    // may have lapped it again while the store was read), what comes next arrives whole.
    while let Some(d) = sub.try_next() {
        app.apply(&d);
    }
    let bus = sup.event_bus();
    for i in 0..3 {
        bus.publish(Event::Notice {
            kind: "test".into(),
            text: format!("after {i}"),
            terminal: false,
        });
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let d = sub.next().await.unwrap();
        let Delivery::Event(event) = &d else {
            panic!("lagged again after catching up: {d:?}")
        };
        if let Event::Notice { kind, text, .. } = &**event
            && kind == "test"
        {
            seen.push(text.clone());
        }
        app.apply(&d);
    }
    assert_eq!(seen, ["after 0", "after 1", "after 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_happening_draws_no_frame_and_bursts_are_coalesced() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 4096).await;
    let mut app = app_for(&sup);
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    let idle = futures::stream::pending();
    let report = event_loop::run(
        &mut term,
        &mut app,
        idle,
        Events::Local(sup.subscribe()),
        &Link::Local(sup.clone()),
        sup.store().clone(),
        tokio::time::sleep(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(report.frames, 1, "the first frame, then nothing for 2 s");

    // A run emits hundreds of events in a moment; frames stay at most one per 16 ms.
    let sub = sup.subscribe();
    let sup2 = sup.clone();
    tokio::spawn(async move {
        let mut task = ecca::supervisor::NewTask {
            client_id: "acme".into(),
            title: "Ten helpers".into(),
            description: (1..=10).map(|i| format!("- helper {i}\n")).collect(),
            stack: "python".into(),
            source: "manual".into(),
            agent_kind: "builtin".into(),
            budget_micros: None,
            provider: Some(ProviderKind::Offline),
            base_branch: None,
            price_micros: None,
            acceptance: Vec::new(),
        };
        task.budget_micros = Some(10_000_000);
        sup2.execute(Command::StartTask { task }).await.unwrap();
    });
    let started = std::time::Instant::now();
    let report = event_loop::run(
        &mut term,
        &mut app,
        futures::stream::pending(),
        Events::Local(sub),
        &Link::Local(sup.clone()),
        sup.store().clone(),
        tokio::time::sleep(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let ms = started.elapsed().as_millis() as u64;
    assert!(report.frames >= 2, "it drew the activity");
    assert!(
        report.frames <= ms / 16 + 2,
        "{} frames in {ms} ms",
        report.frames
    );
    assert!(
        app.rows.iter().any(|r| r.title == "Ten helpers"),
        "the events reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_highlights_the_visible_diff_off_the_ui_thread() {
    use ecca::console::fixture;
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 4096).await;
    let mut app = fixture::app(
        Theme::load("dark", None, false).unwrap(),
        Keymap::load(&BTreeMap::new()).unwrap(),
        View::Detail,
    );
    app.detail.pane = 1; // Diff
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    // Give the worker time to load its grammars; the loop keeps drawing what it has.
    event_loop::run(
        &mut term,
        &mut app,
        futures::stream::pending(),
        Events::Local(sup.subscribe()),
        &Link::Local(sup.clone()),
        sup.store().clone(),
        tokio::time::sleep(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let code_lines = app
        .detail
        .loaded
        .as_ref()
        .unwrap()
        .diff
        .iter()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count();
    assert_eq!(
        app.detail.highlights.len(),
        code_lines,
        "every visible code line was highlighted"
    );
    let def = app
        .detail
        .highlights
        .values()
        .find(|s| s.iter().any(|(_, t)| t == "def"))
        .expect("the def line");
    let others: Vec<_> = def.iter().map(|(c, _)| *c).collect();
    assert!(
        others.windows(2).any(|w| w[0] != w[1]),
        "more than one colour on `def main()`: {def:?}"
    );
    // The last frame shows them: `def` is drawn in the keyword's colour, not the diff's green.
    let buf = term.backend().buffer();
    let text = svg::text(buf);
    let row = text
        .lines()
        .position(|l| l.contains("+def main() -> str:"))
        .expect("diff on screen");
    let col = text.lines().nth(row).unwrap().find("def").unwrap();
    let col = text.lines().nth(row).unwrap()[..col].chars().count() as u16;
    let keyword = def.iter().find(|(_, t)| t == "def").unwrap().0;
    assert_eq!(buf[(col, row as u16)].fg, keyword);
}

#[test]
fn mouse_selects_and_scrolls_and_paste_lands_in_the_note() {
    use ecca::console::app::Overlay;
    use ecca::console::fixture;
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut app = fixture::app(
        Theme::load("dark", None, false).unwrap(),
        Keymap::load(&BTreeMap::new()).unwrap(),
        View::Runs,
    );
    render(&app, 120, 36).unwrap(); // lays out the rows
    let rows = app.list_area.get();
    let click = |row: u16| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: rows.x + 3,
        row,
        modifiers: KeyModifiers::NONE,
    };
    app.mouse(click(rows.y + 3));
    assert_eq!(app.runs.sel, 3, "a click selects the row under it");
    app.mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 5,
        row: 5,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.runs.sel, 4, "the wheel moves the selection");
    // Bracketed paste goes into the revise note as typed text, newlines kept.
    let e = app.key(key('2'));
    assert!(matches!(&e[..], [Effect::LoadDetail { .. }]));
    app.key(key('r'));
    app.paste("retry twice\nand log it");
    let Some(Overlay::Note { text, .. }) = &app.overlay else {
        panic!("the note is open")
    };
    assert_eq!(text.lines(), ["retry twice", "and log it"]);
    let sent = app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    assert!(
        matches!(&sent[..], [Effect::Send(Command::Revise { task_id, note })] if task_id == "T-0005" && note == "retry twice\nand log it"),
        "{sent:?}"
    );
}

/// The sample console on the Approvals view with `task_id` selected and its evidence loaded.
fn approvals_on(task_id: &str) -> App {
    use ecca::console::fixture;
    let mut app = fixture::app(
        Theme::load("dark", None, false).unwrap(),
        Keymap::load(&BTreeMap::new()).unwrap(),
        View::Approvals,
    );
    app.approvals.sel = app
        .waiting()
        .iter()
        .position(|r| r.task_id == task_id)
        .unwrap();
    app.detail.loaded = Some(fixture::repo_detail(task_id));
    app
}

fn press(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
    app.key(KeyEvent::new(code, mods))
}

fn approvals_sent(effects: &[Effect]) -> Vec<&Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c @ Command::Approve { .. }) => Some(c),
            _ => None,
        })
        .collect()
}

/// A moderate risk approves with the plain key, with no review fields.
#[test]
fn a_moderate_risk_deliverable_approves_with_one_key() {
    let mut app = approvals_on("T-0008");
    let effects = press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Approve {
            task_id: "T-0008".into(),
            review: Default::default(),
        })]
    );
    assert!(app.overlay.is_none());
}

/// Risk above 70 with a secret: approve opens the full diff; the second key does nothing
/// until the diff was paged to its end; then the secret asks for a non-empty note; the
/// command carries both review fields.
#[test]
fn a_risky_deliverable_is_approved_only_after_the_whole_diff_and_a_note() {
    let mut app = approvals_on("T-0009");
    assert!(press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE).is_empty());
    assert!(matches!(
        app.overlay,
        Some(ecca::console::app::Overlay::Review(_))
    ));
    // The confirmation key before the end is refused, and says what is left.
    assert!(approvals_sent(&press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE)).is_empty());
    let notice = app.notice.clone().unwrap();
    assert!(
        notice.1 && notice.0.contains("read the whole diff"),
        "{notice:?}"
    );
    // Drawn once: the page is what the screen shows.
    render(&app, 120, 36).unwrap();
    let mut pages = 0;
    loop {
        let Some(ecca::console::app::Overlay::Review(r)) = &app.overlay else {
            panic!("the review closed while paging")
        };
        if r.seen_end.get() {
            break;
        }
        assert!(r.left() > 0);
        assert!(approvals_sent(&press(&mut app, KeyCode::PageDown, KeyModifiers::NONE)).is_empty());
        pages += 1;
        assert!(pages < 20, "paging never reached the end");
    }
    assert!(
        pages >= 2,
        "the 86-line diff takes more than one page at 36 rows"
    );
    // Scrolling back up after the end does not take the reading back.
    press(&mut app, KeyCode::Char('g'), KeyModifiers::NONE);
    let effects = press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE);
    assert!(
        approvals_sent(&effects).is_empty(),
        "the secret still needs its note"
    );
    let Some(ecca::console::app::Overlay::Note { purpose, .. }) = &app.overlay else {
        panic!("no secret-override dialog after the review")
    };
    assert_eq!(
        *purpose,
        ecca::console::app::NoteFor::SecretOverride {
            critical_reviewed: true
        }
    );
    // An empty (or blank) note is refused.
    press(&mut app, KeyCode::Char(' '), KeyModifiers::NONE);
    let effects = press(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(approvals_sent(&effects).is_empty());
    assert!(app.overlay.is_some(), "the dialog stays for the note");
    app.paste("test fixture value, rotated in the dashboard");
    let effects = press(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Approve {
            task_id: "T-0009".into(),
            review: ecca::supervisor::ApprovalReview {
                critical_reviewed: true,
                secret_override: Some("test fixture value, rotated in the dashboard".into()),
            },
        })]
    );
    assert!(app.overlay.is_none());
}

/// Risk above 70 without a secret: the confirmation after the end sends the approval
/// itself. Esc leaves the review without a decision.
#[test]
fn a_risky_deliverable_without_a_secret_approves_after_the_review() {
    let mut app = approvals_on("T-0009");
    let repo = app.detail.loaded.as_mut().unwrap().repo.as_mut().unwrap();
    repo.risk.as_mut().unwrap().secrets.clear();
    press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE);
    assert!(press(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert!(app.overlay.is_none(), "Esc closes the review");
    press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE);
    // Never drawn: a page is 20 lines; five pages cover the 86 lines.
    for _ in 0..5 {
        assert!(
            approvals_sent(&press(&mut app, KeyCode::Char(' '), KeyModifiers::NONE)).is_empty()
        );
    }
    let effects = press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Approve {
            task_id: "T-0009".into(),
            review: ecca::supervisor::ApprovalReview {
                critical_reviewed: true,
                secret_override: None,
            },
        })]
    );
}

/// A secret below the critical line: the plain key opens the override dialog (no review),
/// and the supervisor's refusal of an approval is shown as it came.
#[test]
fn a_secret_alone_asks_for_a_note_and_a_refusal_is_shown() {
    let mut app = approvals_on("T-0009");
    let repo = app.detail.loaded.as_mut().unwrap().repo.as_mut().unwrap();
    repo.risk.as_mut().unwrap().score = 40;
    assert!(press(&mut app, KeyCode::Char('y'), KeyModifiers::NONE).is_empty());
    let Some(ecca::console::app::Overlay::Note { purpose, .. }) = &app.overlay else {
        panic!("no secret-override dialog")
    };
    assert_eq!(
        *purpose,
        ecca::console::app::NoteFor::SecretOverride {
            critical_reviewed: false
        }
    );
    app.paste("a documented test key");
    let effects = press(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    let [Effect::Send(cmd)] = &effects[..] else {
        panic!("{effects:?}")
    };
    let refusal = "task T-0009 cannot be approved: its diff holds what looks like a secret";
    app.command_done(cmd, Err(refusal.into()));
    let screen = svg::text(&render(&app, 120, 36).unwrap());
    assert!(screen.contains(refusal), "{screen}");
}

/// The Run detail reads a repository run's evidence from its checkpoint in the store: the
/// diff against the base (not the files written whole), the checks, the risk, and the
/// pull request once the task has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_loads_a_repository_run_from_its_checkpoint() {
    use ecca::store::WriteOp;
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 4096).await;
    let started = sup
        .execute(Command::StartTask {
            task: ecca::supervisor::NewTask {
                client_id: "acme".into(),
                title: "Write a Python hello world".into(),
                description: String::new(),
                stack: "python".into(),
                source: "manual".into(),
                agent_kind: "builtin".into(),
                budget_micros: None,
                provider: Some(ProviderKind::Offline),
                base_branch: None,
                price_micros: None,
                acceptance: Vec::new(),
            },
        })
        .await
        .unwrap();
    let ecca::supervisor::Reply::TaskStarted { task_id, run_id } = started else {
        panic!()
    };
    sup.wait_settled(&task_id).await.unwrap();
    let greenfield = load_detail(sup.store(), &task_id, 70).unwrap();
    assert!(greenfield.repo.is_none());
    assert!(greenfield.diff.iter().any(|l| l == "--- /dev/null"));

    // The same run as a repository run: its checkpoint carries the repository work.
    let run = sup.store().latest_run(&task_id).unwrap().unwrap();
    let mut agent: ecca::engine::fsm::Agent = serde_json::from_str(&run.fsm_state).unwrap();
    let work = ecca::console::fixture::repo_work();
    agent.repo = Some(work.clone());
    sup.store()
        .write(vec![
            WriteOp::UpdateRun {
                run_id: run_id.clone(),
                status: run.status,
                agent_state: run.agent_state.clone(),
                fsm_state: serde_json::to_string(&agent).unwrap(),
                finished_at: None,
            },
            WriteOp::Audit {
                task_id: task_id.clone(),
                run_id: run_id.clone(),
                entry: ecca::repo::AuditEntry {
                    at: i64::MAX / 2,
                    tool: "git worktree add".into(),
                    args_digest: "0011223344556677".into(),
                    outcome: "ok".into(),
                    duration_ms: 12,
                },
            },
        ])
        .await
        .unwrap();
    let d = load_detail(sup.store(), &task_id, 70).unwrap();
    assert_eq!(d.repo.as_ref(), Some(&work));
    assert_eq!(
        d.timeline.last().map(|e| e.text.as_str()),
        Some("  git worktree add: ok (12 ms)"),
        "git operations of the audit trail are on the timeline, in time order"
    );
    let patch: Vec<String> = work
        .diff
        .as_ref()
        .unwrap()
        .patch
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(d.diff, patch, "the diff is the patch against the base");

    let mut app = app_for(&sup);
    assert_eq!(
        app.rows[0].result, None,
        "no event or store column says it yet"
    );
    // Opened as the operator does: the loop loads the detail.
    let effects = app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    perform(&mut app, &sup, effects).await;
    assert_eq!(app.view, View::Detail);
    assert_eq!(app.panes()[0], "Evidence");
    assert_eq!(
        app.rows[0].result.as_deref(),
        Some("SUCCESS"),
        "the row takes the result from the loaded detail"
    );
    let screen = svg::text(&render(&app, 120, 36).unwrap());
    assert!(
        screen.contains("result SUCCESS") && screen.contains("risk   45/100 moderate"),
        "{screen}"
    );
    assert!(!screen.contains("pull request"), "{screen}");

    // Delivered: the task's deliverable URL is the pull request.
    let task = sup.store().task(&task_id).unwrap().unwrap();
    let url = "https://github.com/acme/invoices/pull/57";
    sup.store()
        .write(vec![WriteOp::UpdateTask {
            task_id: task_id.clone(),
            status: TaskStatus::Delivered,
            reason: None,
            iterations: task.iterations,
            quality_score: task.quality_score,
            deliverable_url: Some(url.into()),
            completed_at: Some(ecca::time::now_ms()),
        }])
        .await
        .unwrap();
    app.detail.loaded = Some(load_detail(sup.store(), &task_id, 70).unwrap());
    let screen = svg::text(&render(&app, 120, 36).unwrap());
    assert!(screen.contains(&format!("pull request {url}")), "{screen}");
}

/// After an approval the notice says "delivering"; the delivery's outcome replaces it: a
/// failure as an error with what to do, a success with the pull request's address.
#[test]
fn a_delivery_done_before_the_approval_answers_keeps_its_outcome() {
    use ecca::supervisor::Event;
    let mut app = approvals_on("T-0008");
    let effects = app.key(key('y'));
    let [Effect::Send(approve @ Command::Approve { .. })] = &effects[..] else {
        panic!("y approves: {effects:?}")
    };
    // On a busy machine the bundle is delivered before the command's answer comes back.
    app.apply(&Delivery::Event(std::sync::Arc::new(Event::Delivered {
        task_id: "T-0008".into(),
        url: "file:///deliveries/T-0008.tar.gz".into(),
    })));
    app.command_done(approve, Ok(()));
    assert_eq!(
        app.notice,
        Some((
            "T-0008 delivered: file:///deliveries/T-0008.tar.gz".into(),
            false
        ))
    );
    // Approving again later says "delivering" again: that outcome was the last attempt's.
    let effects = app.key(key('y'));
    let [Effect::Send(approve)] = &effects[..] else {
        panic!("y approves again: {effects:?}")
    };
    app.command_done(approve, Ok(()));
    assert_eq!(
        app.notice,
        Some(("T-0008 approved; delivering".into(), false))
    );
}

#[test]
fn the_notice_follows_the_delivery_to_its_outcome() {
    use ecca::supervisor::Event;
    let mut app = approvals_on("T-0008");
    let approve = Command::Approve {
        task_id: "T-0008".into(),
        review: Default::default(),
    };
    app.command_done(&approve, Ok(()));
    assert_eq!(
        app.notice,
        Some(("T-0008 approved; delivering".into(), false))
    );
    app.apply(&Delivery::Event(std::sync::Arc::new(Event::Note {
        task_id: "T-0008".into(),
        run_id: "R-1".into(),
        text: "delivery failed: push refused; approve again to retry".into(),
    })));
    assert_eq!(
        app.notice,
        Some((
            "T-0008 delivery failed: push refused; approve again to retry".into(),
            true
        ))
    );
    app.apply(&Delivery::Event(std::sync::Arc::new(Event::Delivered {
        task_id: "T-0008".into(),
        url: "https://github.example/acme/shop/pull/7".into(),
    })));
    assert_eq!(
        app.notice,
        Some((
            "T-0008 delivered: https://github.example/acme/shop/pull/7".into(),
            false
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_meter_moves_while_a_reply_streams_and_the_ledger_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 400, 4096).await;
    let mut sub = sup.subscribe();
    let mut app = app_for(&sup);
    let e = app.key(key('n'));
    perform(&mut app, &sup, e).await;
    for c in "Write a Python hello world".chars() {
        let e = app.key(key(c));
        perform(&mut app, &sup, e).await;
    }
    let launch = app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    perform(&mut app, &sup, launch).await;
    // Event by event until a call that streamed is settled.
    let mut seen_moving = false;
    let mut settled_after_stream = None;
    while settled_after_stream.is_none() {
        let d = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("no event for 20 s")
            .expect("bus closed");
        let before = app.rows.first().map(|r| (r.shown_cost(), r.streaming));
        let effects = app.apply(&d);
        perform(&mut app, &sup, effects).await;
        let row = &app.rows[0];
        if row.streaming.is_some_and(|s| s.streamed_bytes > 0) {
            let (shown, estimate) = row.shown_cost();
            assert!(
                estimate && shown > row.cost,
                "the meter is ahead of the ledger"
            );
            if let Some(((previous, _), _)) = before {
                assert!(
                    shown >= previous,
                    "the meter never goes back while streaming"
                );
            }
            let screen = svg::text(&render(&app, 160, 48).unwrap());
            assert!(
                screen.contains(&format!("~{}*", ecca::money::format_usd(shown))),
                "the Runs view shows the estimate, marked: {screen}"
            );
            seen_moving = true;
        }
        if let (Delivery::Event(e), Some((estimate, Some(s)))) = (&d, before)
            && matches!(e.as_ref(), ecca::supervisor::Event::CostRecorded { .. })
            && s.streamed_bytes > 0
        {
            settled_after_stream = Some((estimate.0, app.rows[0].clone()));
        }
    }
    assert!(seen_moving, "the meter moved before the call settled");
    let (estimate, row) = settled_after_stream.unwrap();
    assert_eq!(
        row.streaming, None,
        "the settled cost replaced the estimate"
    );
    assert_eq!(row.shown_cost(), (row.cost, false));
    // The offline model counts tokens as the estimate does, so the last estimate is the
    // settled figure to the rounding of one micro-dollar.
    assert!(
        (estimate - row.cost).abs() <= 1,
        "estimate {estimate} vs settled {}",
        row.cost
    );
    // At the gate, nothing streams and the row is the ledger's figure.
    pump(&mut app, &sup, &mut sub, |a| {
        a.rows[0].status == TaskStatus::AwaitingApproval
    })
    .await;
    let stored = sup.store().task(&row.task_id).unwrap().unwrap().cost_micros;
    assert_eq!(app.rows[0].shown_cost(), (stored, false));
}

/// One frame's streamed text of several runs arrives as one event: every run's row counts
/// its own bytes, and the Run detail shows only the text of the run it shows.
#[test]
fn one_event_carrying_several_runs_text_reaches_each_run() {
    use ecca::console::{fixture, model::StreamingCost};
    use ecca::supervisor::RunText;
    use std::sync::Arc;
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Detail);
    let shown = app.detail.loaded.as_ref().unwrap().run_id.clone();
    let other = app
        .rows
        .iter()
        .filter_map(|r| r.run_id.clone())
        .find(|r| *r != shown)
        .unwrap();
    for row in app.rows.iter_mut() {
        row.streaming = Some(StreamingCost::default());
    }
    let lines_before = app.detail.loaded.as_ref().unwrap().output.len();
    let event = Event::ModelDeltas {
        deltas: vec![
            RunText {
                run_id: other.clone(),
                text: Arc::from("not shown here\n"),
            },
            RunText {
                run_id: shown.clone(),
                text: Arc::from("first line\nsecond "),
            },
            RunText {
                run_id: shown.clone(),
                text: Arc::from("half\n"),
            },
        ],
    };
    app.dirty = false;
    let effects = app.apply(&Delivery::Event(Arc::new(event)));
    assert!(effects.is_empty());
    assert!(app.dirty, "the Run detail redraws for its run's text");
    let bytes = |run: &str| {
        app.rows
            .iter()
            .find(|r| r.run_id.as_deref() == Some(run))
            .and_then(|r| r.streaming)
            .map(|s| s.streamed_bytes)
    };
    assert_eq!(bytes(&other), Some(15));
    assert_eq!(bytes(&shown), Some(23));
    let detail = app.detail.loaded.as_ref().unwrap();
    let added: Vec<&str> = (lines_before..detail.output.len())
        .filter_map(|i| detail.output.get(i))
        .collect();
    assert_eq!(added, ["first line", "second half"]);
}
