//! Notifications: when a deliverable starts waiting for approval, a run fails, or a client
//! passes 80 % of its month, the operator hears about it without looking.
//!
//! A task of the supervisor reads the bus, decides (`notice_of`, pure but for the client's
//! cap read from the store) and publishes `Event::Notice`, which attached consoles turn into
//! a bell and an OSC 9 notification; it also runs `notify-send` where a desktop session is
//! there, and posts `{"text": …}` (Slack's incoming-webhook format) to a configured URL.
//! Each kind and each channel can be turned off in `[notifications]`. A channel that fails
//! is logged and never slows the bus.

use crate::config::NotificationsConfig;
use crate::store::Store;
use crate::supervisor::{Delivery, Event, Subscription, WeakEventBus};
use std::time::Duration;

/// The share of a client's cap that is announced once crossed.
pub const BUDGET_WARN_PERCENT: i64 = 80;
/// The longest a desktop or webhook notification may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: &'static str,
    pub text: String,
}

/// The notice an event calls for, if any. `cap_of` reads a client's monthly cap.
pub fn notice_of(
    event: &Event,
    config: &NotificationsConfig,
    cap_of: &dyn Fn(&str) -> Option<i64>,
) -> Option<Notice> {
    match event {
        Event::AwaitingApproval {
            task_id,
            quality_score,
            ..
        } if config.approval => Some(Notice {
            kind: "approval",
            text: match quality_score {
                Some(q) => format!("{task_id} awaits approval (score {q:.1}/10)"),
                None => format!("{task_id} awaits approval"),
            },
        }),
        Event::RunFinished {
            task_id,
            status,
            reason,
            ..
        } if config.failure && status == "failed" => Some(Notice {
            kind: "failure",
            text: format!(
                "{task_id} failed: {}",
                reason.as_deref().unwrap_or("no reason given")
            ),
        }),
        Event::CostRecorded {
            client_id,
            cost_micros,
            client_month_micros,
            simulated,
            ..
        } if config.budget && !simulated => {
            let cap = cap_of(client_id).filter(|c| *c > 0)?;
            let line = cap as i128 * BUDGET_WARN_PERCENT as i128;
            let before = (*client_month_micros - *cost_micros) as i128 * 100;
            let after = *client_month_micros as i128 * 100;
            (before < line && after >= line).then(|| Notice {
                kind: "budget",
                text: format!(
                    "client {client_id} passed {BUDGET_WARN_PERCENT} % of its monthly cap: {} of {}",
                    crate::money::format_usd(*client_month_micros),
                    crate::money::format_usd(cap)
                ),
            })
        }
        _ => None,
    }
}

/// Reads the bus until it goes, publishing a notice for each event that calls for one and
/// sending it to the desktop and the webhook.
pub async fn run(
    mut events: Subscription,
    bus: WeakEventBus,
    store: Store,
    config: NotificationsConfig,
) {
    let webhook = (!config.webhook_url.trim().is_empty()).then(|| {
        crate::install_tls_provider();
        reqwest::Client::builder().timeout(SEND_TIMEOUT).build()
    });
    let webhook = match webhook {
        Some(Ok(client)) => Some(client),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the notification webhook's client could not be built; notifications go elsewhere only");
            None
        }
        None => None,
    };
    let desktop = config.desktop && desktop_session();
    let cap_of = |client: &str| {
        store
            .client(client)
            .ok()
            .flatten()
            .map(|c| c.monthly_budget_micros)
    };
    while let Some(delivery) = events.next().await {
        let Delivery::Event(event) = delivery else {
            continue;
        };
        let Some(notice) = notice_of(&event, &config, &cap_of) else {
            continue;
        };
        let Some(bus) = bus.upgrade() else {
            return;
        };
        bus.publish(Event::Notice {
            kind: notice.kind.into(),
            text: notice.text.clone(),
            terminal: config.terminal,
        });
        drop(bus);
        if desktop {
            tokio::spawn(send_desktop(notice.clone()));
        }
        if let Some(client) = &webhook {
            tokio::spawn(send_webhook(
                client.clone(),
                config.webhook_url.clone(),
                notice,
            ));
        }
    }
}

/// A desktop session to notify: a display and `notify-send` on the PATH.
fn desktop_session() -> bool {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("notify-send").is_file())
    });
    if !has_display || !on_path {
        tracing::info!(
            has_display,
            on_path,
            "desktop notifications skipped: no desktop session or no notify-send"
        );
    }
    has_display && on_path
}

async fn send_desktop(notice: Notice) {
    let run = tokio::process::Command::new("notify-send")
        .args(["--app-name=ecca", "ecca", &notice.text])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(SEND_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => {}
        Ok(Ok(out)) => tracing::warn!(status = %out.status, "notify-send refused a notification"),
        Ok(Err(e)) => tracing::warn!(error = %e, "notify-send could not run"),
        Err(_) => tracing::warn!("notify-send took longer than 10 s; left"),
    }
}

/// The Slack-compatible message of a notice.
pub fn webhook_body(notice: &Notice) -> serde_json::Value {
    serde_json::json!({ "text": format!("ecca: {}", notice.text), "kind": notice.kind })
}

async fn send_webhook(client: reqwest::Client, url: String, notice: Notice) {
    match client.post(&url).json(&webhook_body(&notice)).send().await {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => {
            tracing::warn!(status = %resp.status(), "the notification webhook refused a message")
        }
        Err(e) => tracing::warn!(error = %e, "the notification webhook could not be reached"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Usage;

    fn cost(client_month: i64, cost: i64, simulated: bool) -> Event {
        Event::CostRecorded {
            task_id: "T-0001".into(),
            run_id: "T-0001/r1".into(),
            client_id: "acme".into(),
            model: "claude-sonnet-4-5".into(),
            simulated,
            usage: Usage::default(),
            estimated: false,
            cost_micros: cost,
            task_total_micros: cost,
            client_month_micros: client_month,
        }
    }

    #[test]
    fn the_80_percent_line_is_announced_once_when_crossed() {
        let on = NotificationsConfig::default();
        let cap = |_: &str| Some(100_000_000);
        // 79.9 → 80.1: crossed.
        let n = notice_of(&cost(80_100_000, 200_000, false), &on, &cap).unwrap();
        assert_eq!(n.kind, "budget");
        assert!(n.text.contains("$80.100000 of $100.000000"), "{}", n.text);
        // Already past: no new notice; below: none; simulated spend never counts.
        assert_eq!(
            notice_of(&cost(85_000_000, 1_000_000, false), &on, &cap),
            None
        );
        assert_eq!(
            notice_of(&cost(70_000_000, 1_000_000, false), &on, &cap),
            None
        );
        assert_eq!(notice_of(&cost(80_100_000, 200_000, true), &on, &cap), None);
        // Exactly on the line counts as crossed.
        assert!(notice_of(&cost(80_000_000, 1, false), &on, &cap).is_some());
        let off = NotificationsConfig {
            budget: false,
            ..Default::default()
        };
        assert_eq!(
            notice_of(&cost(80_100_000, 200_000, false), &off, &cap),
            None
        );
    }

    #[test]
    fn approvals_and_failures_are_announced_unless_turned_off() {
        let on = NotificationsConfig::default();
        let none = |_: &str| None;
        let waiting = Event::AwaitingApproval {
            task_id: "T-0002".into(),
            run_id: "T-0002/r1".into(),
            quality_score: Some(8.5),
        };
        assert_eq!(
            notice_of(&waiting, &on, &none).unwrap().text,
            "T-0002 awaits approval (score 8.5/10)"
        );
        let failed = Event::RunFinished {
            task_id: "T-0003".into(),
            run_id: "T-0003/r1".into(),
            status: "failed".into(),
            reason: Some("budget".into()),
        };
        assert_eq!(
            notice_of(&failed, &on, &none).unwrap().text,
            "T-0003 failed: budget"
        );
        let delivered = Event::RunFinished {
            task_id: "T-0003".into(),
            run_id: "T-0003/r1".into(),
            status: "delivered".into(),
            reason: None,
        };
        assert_eq!(notice_of(&delivered, &on, &none), None);
        let off = NotificationsConfig {
            approval: false,
            failure: false,
            ..Default::default()
        };
        assert_eq!(notice_of(&waiting, &off, &none), None);
        assert_eq!(notice_of(&failed, &off, &none), None);
    }
}
