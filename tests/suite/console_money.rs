//! The Clients and Batch views against a real supervisor and store: keys in, effects
//! performed as the loop performs them, the supervisor's events fed back. A cap reached
//! pauses a run, the view says which and why, and a cap raised from the view's dialog lets
//! it go on; a manifest opened by path is forecast, launched after a confirmation and
//! followed on the scoreboard to the approval gate.

use crate::common;

use common::console::{app_for, key, perform, pump, supervisor};
use ecca::console::app::{Effect, Overlay, View};
use ecca::console::views::batch::Stage;
use ecca::console::{render, svg};
use ecca::domain::TaskStatus;
use ecca::supervisor::{Command, NewTask};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn ctrl_s() -> KeyEvent {
    KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)
}

fn special(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn screen(app: &ecca::console::app::App, w: u16, h: u16) -> String {
    svg::text(&render(app, w, h).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_reached_is_shown_with_its_paused_run_and_raised_from_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 4096).await;
    // A cap of a tenth of a cent: the first offline call passes it and the run pauses.
    sup.execute(Command::SetClientCap {
        client_id: "acme".into(),
        monthly_budget_micros: 1_000,
        note: "tiny cap for the test".into(),
    })
    .await
    .unwrap();
    let mut sub = sup.subscribe();
    let mut app = app_for(&sup);
    let effects = app.start();
    perform(&mut app, &sup, effects).await;
    let task = NewTask {
        client_id: "acme".into(),
        title: "Helpers past the cap".into(),
        description: "- one\n- two\n- three".into(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        budget_micros: None,
        provider: Some(ecca::config::ProviderKind::Offline),
        base_branch: None,
        acceptance: Vec::new(),
        price_micros: None,
    };
    let effects = vec![Effect::Send(Command::StartTask { task })];
    perform(&mut app, &sup, effects).await;
    // The Paused event (with its reason) follows the state change to paused.
    pump(&mut app, &sup, &mut sub, |a| {
        a.rows
            .iter()
            .any(|r| r.status == TaskStatus::Paused && r.reason.is_some())
    })
    .await;
    let paused_task = app.rows[0].task_id.clone();
    assert!(
        app.rows[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("would pass its monthly budget"),
        "{:?}",
        app.rows[0].reason
    );

    let e = app.key(key('3'));
    perform(&mut app, &sup, e).await;
    assert_eq!(app.view, View::Clients);
    let acme = app.clients.selected().expect("acme's month").clone();
    assert_eq!(acme.paused.len(), 1, "the paused run is listed");
    assert_eq!(acme.paused[0].task_id, paused_task);
    let wide = screen(&app, 160, 48);
    assert!(
        wide.contains("acme at its monthly cap: runs paused"),
        "the header says so:\n{wide}"
    );
    assert!(wide.contains(&format!("paused {paused_task}")), "{wide}");
    assert!(wide.contains("!!"), "the client row is marked:\n{wide}");

    // The cap dialog refuses a bad amount and a missing note, and keeps what was typed.
    let e = app.key(key('m'));
    perform(&mut app, &sup, e).await;
    assert!(matches!(app.overlay, Some(Overlay::Money(_))));
    for c in "five".chars() {
        app.key(key(c));
    }
    assert!(app.key(ctrl_s()).is_empty());
    let Some(Overlay::Money(d)) = &app.overlay else {
        panic!("the dialog stays open")
    };
    assert!(d.error.as_deref().unwrap().contains("not a dollar amount"));
    for _ in 0..4 {
        app.key(special(KeyCode::Backspace));
    }
    for c in "5.00".chars() {
        app.key(key(c));
    }
    assert!(app.key(ctrl_s()).is_empty(), "no note, no change");
    let Some(Overlay::Money(d)) = &app.overlay else {
        panic!("the dialog stays open")
    };
    assert!(d.error.as_deref().unwrap().contains("note"));
    app.key(special(KeyCode::Tab));
    for c in "raised after the client's call".chars() {
        app.key(key(c));
    }
    let e = app.key(ctrl_s());
    assert_eq!(
        e,
        vec![Effect::Send(Command::SetClientCap {
            client_id: "acme".into(),
            monthly_budget_micros: 5_000_000,
            note: "raised after the client's call".into(),
        })]
    );
    assert!(app.overlay.is_none());
    perform(&mut app, &sup, e).await;
    assert!(
        app.notice.as_ref().unwrap().0.contains("$5.000000"),
        "{:?}",
        app.notice
    );
    // The raised cap lets the paused run go on; the view follows without a key.
    pump(&mut app, &sup, &mut sub, |a| {
        a.rows
            .iter()
            .any(|r| r.task_id == paused_task && r.status == TaskStatus::AwaitingApproval)
            && a.clients.selected().is_some_and(|m| m.paused.is_empty())
    })
    .await;
    let acme = app.clients.selected().unwrap();
    assert_eq!(acme.cap_micros, 5_000_000);
    assert!(!acme.capped());
    let changes = sup.store().budget_changes(Some("acme"), None).unwrap();
    assert_eq!(
        changes.last().map(|c| (c.new_micros, c.note.as_str())),
        Some((5_000_000, "raised after the client's call")),
        "stored with its note for the audit"
    );

    // A task's budget from the tasks list.
    app.key(special(KeyCode::Tab));
    assert_eq!(
        app.clients.selected_task().as_deref(),
        Some(paused_task.as_str())
    );
    app.key(key('b'));
    let Some(Overlay::Money(d)) = &app.overlay else {
        panic!("the budget dialog")
    };
    assert_eq!(d.title(), format!("Budget of {paused_task}"));
    app.key(special(KeyCode::Esc));
    assert!(app.overlay.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_is_forecast_launched_after_confirmation_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let sup = supervisor(dir.path(), 0, 8192).await;
    let manifest = dir.path().join("three-apps.toml");
    let apps: String = ["tip-splitter", "unit-converter", "word-counter"]
        .iter()
        .map(|n| {
            format!(
                "[[apps]]\nname = \"{n}\"\ndescription = \"A small {n} helper with one function.\"\nstack = \"python\"\n\n"
            )
        })
        .collect();
    std::fs::write(
        &manifest,
        format!("[batch]\nname = \"Three helpers\"\nclient = \"acme\"\nconcurrency = 2\n\n{apps}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("over-cap.toml"),
        format!(
            "[batch]\nname = \"Too dear\"\nclient = \"acme\"\nbudget_usd = \"0.000001\"\n\n{apps}"
        ),
    )
    .unwrap();
    let mut sub = sup.subscribe();
    let mut app = app_for(&sup);

    let e = app.key(key('4'));
    perform(&mut app, &sup, e).await;
    assert_eq!(app.view, View::Batch);
    assert!(matches!(&app.batch.batches, Some(Ok(b)) if b.is_empty()));
    assert!(screen(&app, 80, 24).contains("No batch launched yet"));

    // The over-budget manifest: its launch asks for the second confirmation.
    let typed = format!("{}/ov", dir.path().display());
    for c in typed.chars() {
        app.key(key(c));
    }
    app.key(special(KeyCode::Tab));
    assert_eq!(
        app.batch.path,
        format!("{}/over-cap.toml", dir.path().display())
    );
    let e = app.key(special(KeyCode::Enter));
    perform(&mut app, &sup, e).await;
    assert_eq!(app.batch.stage, Stage::Forecast);
    let f = app.batch.forecast.clone().unwrap().unwrap();
    assert!(f.forecast.over_budget().is_some());
    let e = app.key(key('L'));
    assert!(e.is_empty());
    let Some(Overlay::ConfirmCommand { title, command, .. }) = &app.overlay else {
        panic!("a confirmation before launch")
    };
    assert_eq!(title, "Launch past the budget?");
    assert!(
        matches!(command.as_ref(), Command::StartBatch { batch } if batch.confirmed_over_budget)
    );
    app.key(key('n'));
    assert!(app.overlay.is_none(), "n keeps it unlaunched");
    assert!(sup.store().batches().unwrap().is_empty());

    // The three apps: forecast, launch, follow.
    app.key(special(KeyCode::Esc));
    let e = app.key(special(KeyCode::Esc));
    assert_eq!(
        app.view,
        View::Runs,
        "Esc on the path field leaves the view"
    );
    perform(&mut app, &sup, e).await;
    let e = app.key(key('4'));
    perform(&mut app, &sup, e).await;
    app.batch.path.clear();
    for c in manifest.display().to_string().chars() {
        app.key(key(c));
    }
    let e = app.key(special(KeyCode::Enter));
    perform(&mut app, &sup, e).await;
    let shown = screen(&app, 160, 48);
    assert!(
        shown.contains("no history: estimate from the price table only"),
        "{shown}"
    );
    assert!(shown.contains("word-counter"), "{shown}");
    app.key(key('L'));
    let Some(Overlay::ConfirmCommand { title, .. }) = &app.overlay else {
        panic!("a confirmation before launch")
    };
    assert_eq!(title, "Launch the batch?");
    let e = app.key(key('y'));
    assert!(matches!(&e[..], [Effect::Send(Command::StartBatch { .. })]));
    perform(&mut app, &sup, e).await;
    pump(&mut app, &sup, &mut sub, |a| {
        a.batch.stage == Stage::Board
            && a.batch.apps().len() == 3
            && a.batch.apps().iter().all(|b| {
                a.rows
                    .iter()
                    .any(|r| r.task_id == b.task_id && r.status == TaskStatus::AwaitingApproval)
            })
    })
    .await;
    let board = screen(&app, 160, 48);
    assert!(board.contains("3 awaiting approval"), "{board}");
    assert!(
        board.contains("vs forecast"),
        "forecast beside the actual:\n{board}"
    );
    let batch_id = app.batch.board.clone().unwrap().unwrap().batch.id;

    // One key retries the failed apps (none failed: the supervisor says so or retries none).
    let e = app.key(key('F'));
    assert_eq!(
        e,
        vec![Effect::Send(Command::RetryBatch {
            batch_id: batch_id.clone()
        })]
    );
    // Enter opens the selected app's run.
    app.key(key('j'));
    let e = app.key(special(KeyCode::Enter));
    assert_eq!(app.view, View::Detail);
    let second = app.batch.apps()[1].task_id.clone();
    assert!(matches!(&e[..], [Effect::LoadDetail { task_id, .. }] if *task_id == second));
    perform(&mut app, &sup, e).await;
    app.key(special(KeyCode::Esc));
    assert_eq!(app.view, View::Batch);
    // Cancel asks first, then cancels.
    app.key(key('C'));
    assert!(matches!(app.overlay, Some(Overlay::ConfirmCommand { .. })));
    let e = app.key(key('y'));
    assert_eq!(
        e,
        vec![Effect::Send(Command::CancelBatch {
            batch_id: batch_id.clone()
        })]
    );
    perform(&mut app, &sup, e).await;
    pump(
        &mut app,
        &sup,
        &mut sub,
        |a| matches!(&a.batch.board, Some(Ok(b)) if b.batch.status == "cancelled"),
    )
    .await;
    assert!(screen(&app, 80, 24).contains("cancelled"));
}
