//! Driving the console's state machine against a real supervisor: keys and events in,
//! effects performed the way the loop performs them (synchronously here).

use ecca::config::ProviderKind;
use ecca::console::app::{App, Effect, Header};
use ecca::console::keymap::Keymap;
use ecca::console::model::{load_detail, load_rows};
use ecca::console::theme::Theme;
use ecca::supervisor::{Delivery, Subscription, Supervisor};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::time::Duration;

pub async fn supervisor(dir: &std::path::Path, latency_ms: u64, capacity: usize) -> Supervisor {
    super::supervisor_with_acme(dir, |c| {
        c.offline.latency_ms = latency_ms;
        c.supervisor.event_capacity = capacity;
    })
    .await
}

pub fn app_for(sup: &Supervisor) -> App {
    let header = Header {
        provider: ProviderKind::Offline,
        tools: "none".into(),
        schedule: None,
    };
    let rows = load_rows(sup.store()).unwrap();
    App::new(
        Keymap::load(&BTreeMap::new()).unwrap(),
        Theme::load("dark", None, false).unwrap(),
        header,
        rows,
        vec!["acme".into()],
        ecca::time::now_ms(),
    )
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Performs effects as the loop does (synchronously here).
pub async fn perform(app: &mut App, sup: &Supervisor, effects: Vec<Effect>) {
    let mut effects = std::collections::VecDeque::from(effects);
    while let Some(e) = effects.pop_front() {
        match e {
            Effect::Send(cmd) => {
                let r = sup.execute(cmd.clone()).await.map(|_| ()).map_err(|e| e.0);
                app.command_done(&cmd, r);
            }
            Effect::LoadDetail { task_id, request } => {
                let d = load_detail(sup.store(), &task_id, 70);
                app.detail_loaded(request, d);
            }
            Effect::LoadSibling { task_id, request } => {
                let d = load_detail(sup.store(), &task_id, 70);
                app.sibling_loaded(request, d);
            }
            Effect::ReloadRows => app.rows_loaded(load_rows(sup.store()).unwrap()),
            Effect::LoadClients { request } => {
                let reserved = |c: &str| sup.client_reserved(c);
                let months = ecca::console::loads::clients(
                    sup.store(),
                    sup.config(),
                    &reserved,
                    ecca::time::now_ms(),
                );
                effects.extend(app.clients.loaded(request, months));
            }
            Effect::LoadForecast { path, request } => {
                let mode = app.header.provider.as_str().to_string();
                let f = ecca::console::loads::forecast_of(sup.store(), sup.config(), &path, &mode);
                app.batch.forecast_loaded(request, f);
            }
            Effect::LoadBatches { request } => {
                app.batch
                    .batches_loaded(request, ecca::console::loads::batches(sup.store()));
            }
            Effect::LoadBatch { batch_id, request } => {
                app.batch
                    .board_loaded(request, ecca::console::loads::board(sup.store(), &batch_id));
            }
            Effect::LoadToolStats => app.tool_stats_loaded(sup.tool_stats()),
            // Docker's streams: the containers tests drive the real binary instead.
            Effect::WatchContainers | Effect::FollowLogs { .. } | Effect::StopLogs => {}
            // The terminal's bell: tests/suite/notifications.rs checks the bytes.
            Effect::Notify(_) | Effect::Quit => {}
        }
    }
}

/// Feeds events to the app until `done` holds.
pub async fn pump(
    app: &mut App,
    sup: &Supervisor,
    sub: &mut Subscription,
    done: impl Fn(&App) -> bool,
) -> Vec<Delivery> {
    let mut seen = Vec::new();
    while !done(app) {
        let d = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("no event for 20 s")
            .expect("bus closed");
        let effects = app.apply(&d);
        perform(app, sup, effects).await;
        seen.push(d);
    }
    seen
}
