//! The daily loop against a real supervisor and SQLite store with an injected clock: the
//! first look owes nothing, a slot starts the queued tasks once, a downtime is caught up
//! once per missed day, and restarts inside a slot never run it again.

use crate::common;

use ecca::domain::TaskStatus;
use ecca::schedule::{Schedule, tick, utc_ms};
use ecca::supervisor::{Command, NewTask, Reply, Supervisor};
use std::time::Duration;

fn retainer(title: &str) -> NewTask {
    NewTask {
        client_id: "acme".into(),
        title: title.into(),
        description: "Weekly SEO report for the retainer".into(),
        stack: "python".into(),
        source: "schedule".into(),
        agent_kind: "builtin".into(),
        budget_micros: None,
        provider: None,
        base_branch: None,
        acceptance: vec![],
        price_micros: None,
    }
}

async fn queue(sup: &Supervisor, title: &str) -> String {
    match sup
        .execute(Command::QueueTask {
            task: Box::new(retainer(title)),
        })
        .await
        .unwrap()
    {
        Reply::TaskQueued { task_id } => task_id,
        other => panic!("{other:?}"),
    }
}

async fn settle(sup: &Supervisor, ids: &[String]) {
    for id in ids {
        let t = tokio::time::timeout(Duration::from_secs(120), sup.wait_settled(id))
            .await
            .expect("the run settles")
            .unwrap();
        assert_eq!(t.status, TaskStatus::AwaitingApproval, "{id}");
    }
}

/// A new supervisor on the data dir, once the one dropped has let go of its lock (its
/// runs' tasks finish a moment after they settle).
async fn restart(dir: &std::path::Path) -> Supervisor {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match Supervisor::start(ecca::supervisor::SupervisorOptions::new(
            dir.to_path_buf(),
            ecca::config::Config::default(),
        ))
        .await
        {
            Ok(sup) => return sup,
            Err(e) if e.0.contains("another ecca") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{}", e.0),
        }
    }
}

fn status(sup: &Supervisor, id: &str) -> TaskStatus {
    sup.store().task(id).unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_run_once_catch_up_per_missed_day_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let daily = Schedule::parse("0 9 * * *", "Europe/Berlin").unwrap();
    // 09:00 in Berlin is 08:00 UTC in November.
    let monday_nine = utc_ms(2026, 11, 16, 8, 0);

    let sup = common::supervisor_with_acme(dir.path(), |_| {}).await;
    let a = queue(&sup, "SEO report, week 47").await;
    let b = queue(&sup, "Broken-link check").await;
    // The first look at this store owes nothing, however long the tasks waited.
    let t = tick(&sup, &daily, monday_nine - 3_600_000).await.unwrap();
    assert!(t.ran.is_empty() && t.started.is_empty(), "{t:?}");
    let t = tick(&sup, &daily, monday_nine - 1_000).await.unwrap();
    assert!(t.ran.is_empty(), "{t:?}");
    assert_eq!(
        status(&sup, &a),
        TaskStatus::Pending,
        "queued tasks wait for the slot"
    );
    // The slot: both start, oldest first.
    let t = tick(&sup, &daily, monday_nine + 1_000).await.unwrap();
    assert_eq!(t.ran, vec![monday_nine]);
    assert_eq!(t.started, vec![a.clone(), b.clone()]);
    settle(&sup, &[a.clone(), b.clone()]).await;
    let t = tick(&sup, &daily, monday_nine + 60_000).await.unwrap();
    assert!(
        t.ran.is_empty() && t.started.is_empty(),
        "a slot runs once: {t:?}"
    );
    let c = queue(&sup, "Sitemap refresh").await;
    drop(sup);

    // Down from Monday until Wednesday 11:00 Berlin: Tuesday's and Wednesday's slots are
    // owed, each once; the queued task starts once.
    let wednesday_eleven = utc_ms(2026, 11, 18, 10, 0);
    let sup = restart(dir.path()).await;
    let t = tick(&sup, &daily, wednesday_eleven).await.unwrap();
    assert_eq!(
        t.ran,
        vec![utc_ms(2026, 11, 17, 8, 0), utc_ms(2026, 11, 18, 8, 0)]
    );
    assert_eq!(t.started, vec![c.clone()]);
    settle(&sup, std::slice::from_ref(&c)).await;
    drop(sup);

    // Two restarts inside Wednesday's slot: nothing runs again.
    for minutes in [30, 45] {
        let sup = restart(dir.path()).await;
        let d = queue(&sup, &format!("queued at +{minutes} min")).await;
        let t = tick(&sup, &daily, wednesday_eleven + minutes * 60_000)
            .await
            .unwrap();
        assert!(t.ran.is_empty() && t.started.is_empty(), "{t:?}");
        assert_eq!(
            status(&sup, &d),
            TaskStatus::Pending,
            "it waits for Thursday"
        );
        drop(sup);
    }
    let sup = restart(dir.path()).await;
    let slots = sup.store().schedule_slots().unwrap();
    let worked: Vec<(i64, i64)> = slots.iter().skip(1).map(|s| (s.0, s.2)).collect();
    assert_eq!(
        worked,
        vec![
            (monday_nine, 2),
            (utc_ms(2026, 11, 17, 8, 0), 1),
            (utc_ms(2026, 11, 18, 8, 0), 0),
        ],
        "the baseline, then one row per slot with what it started: {slots:?}"
    );
    // Thursday's slot starts the two queued during the restarts.
    let t = tick(&sup, &daily, utc_ms(2026, 11, 19, 8, 0) + 5_000)
        .await
        .unwrap();
    assert_eq!(t.started.len(), 2, "{t:?}");
}

#[test]
fn ecca_run_queue_leaves_the_task_for_the_daily_loop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[schedule]\ncron = \"0 9 * * *\"\ntime_zone = \"Europe/Berlin\"\n",
    )
    .unwrap();
    let out = common::ecca_command(dir.path())
        .args(["run", "--task", "Weekly SEO report", "--dry-run", "--queue"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("T-0001 queued: the daily loop starts it at")
            && stdout.contains("09:00 Europe/Berlin"),
        "{stdout}"
    );
    let out = common::ecca_command(dir.path())
        .args(["tasks", "--json"])
        .output()
        .unwrap();
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks[0]["status"], "pending", "{tasks}");
    // A schedule the config cannot parse is a sentence, not a default.
    std::fs::write(
        dir.path().join("config.toml"),
        "[schedule]\ncron = \"every morning\"\n",
    )
    .unwrap();
    let out = common::ecca_command(dir.path())
        .args(["run", "--task", "x", "--dry-run", "--queue"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("[schedule]"), "{err}");
    let out = common::ecca_command(dir.path())
        .args(["tasks", "--json"])
        .output()
        .unwrap();
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        tasks.as_array().unwrap().len(),
        1,
        "nothing queued: {tasks}"
    );
}

#[test]
fn the_console_header_shows_the_next_slot() {
    use ecca::console::{app::View, fixture, keymap::Keymap, render, svg, theme::Theme};
    let mut app = fixture::app(
        Theme::load("dark", None, false).unwrap(),
        Keymap::load(&Default::default()).unwrap(),
        View::Runs,
    );
    let screen = svg::text(&render(&app, 160, 48).unwrap());
    assert!(!screen.contains("next loop"), "no loop, no slot: {screen}");
    app.header.schedule = Some(Schedule::parse("0 9 * * *", "Europe/Berlin").unwrap());
    // Wednesday 18 November 2026, 10:00 in Berlin: the next slot is Thursday's.
    app.now_ms = utc_ms(2026, 11, 18, 9, 0);
    let screen = svg::text(&render(&app, 160, 48).unwrap());
    assert!(
        screen.contains("next loop Thu 09:00 Europe/Berlin"),
        "{screen}"
    );
}
