//! Notifications from a real supervisor: a deliverable waiting and a run failing are
//! published as `Event::Notice` and posted to a webhook in Slack's format; a console rings
//! with OSC 9 and a bell, control characters removed.

use crate::common;

use ecca::console::event_loop::Notifier;
use ecca::supervisor::{Command, Delivery, Event, NewTask, Reply};
use std::time::Duration;
use tokio::sync::mpsc;

/// A local webhook receiver: every JSON body posted to it, in order.
async fn receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, app).await });
    (url, rx)
}

fn task(title: &str, budget_micros: Option<i64>) -> NewTask {
    NewTask {
        client_id: "acme".into(),
        title: title.into(),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        budget_micros,
        provider: None,
        base_branch: None,
        acceptance: vec![],
        price_micros: None,
    }
}

async fn next_notice(sub: &mut ecca::supervisor::Subscription) -> (String, String, bool) {
    loop {
        let d = tokio::time::timeout(Duration::from_secs(60), sub.next())
            .await
            .expect("a notice within 60 s")
            .expect("bus open");
        if let Delivery::Event(e) = d
            && let Event::Notice {
                kind,
                text,
                terminal,
            } = e.as_ref()
        {
            return (kind.clone(), text.clone(), *terminal);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_and_failing_runs_are_announced_on_the_bus_and_the_webhook() {
    let (url, mut posted) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let sup = common::supervisor_with_acme(dir.path(), |c| {
        c.notifications.webhook_url = url.clone();
        c.notifications.desktop = false;
    })
    .await;
    let mut sub = sup.subscribe();

    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: task("Write a Python hello world", None),
        })
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let (kind, text, terminal) = next_notice(&mut sub).await;
    assert_eq!(kind, "approval");
    assert!(
        text.starts_with(&format!("{task_id} awaits approval")),
        "{text}"
    );
    assert!(terminal, "consoles ring by default");
    let body = tokio::time::timeout(Duration::from_secs(30), posted.recv())
        .await
        .expect("the webhook receives the notice")
        .unwrap();
    assert_eq!(body["text"], format!("ecca: {text}"));
    assert_eq!(body["kind"], "approval");

    // A budget too small for one call: the run fails, and that is announced.
    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: task("Too small a budget", Some(1)),
        })
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let (kind, text, _) = next_notice(&mut sub).await;
    assert_eq!(kind, "failure", "{text}");
    assert!(text.starts_with(&format!("{task_id} failed:")), "{text}");
    let body = tokio::time::timeout(Duration::from_secs(30), posted.recv())
        .await
        .expect("the webhook receives the failure")
        .unwrap();
    assert_eq!(body["kind"], "failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turned_off_kinds_are_not_announced() {
    let dir = tempfile::tempdir().unwrap();
    let sup = common::supervisor_with_acme(dir.path(), |c| {
        c.notifications.approval = false;
        c.notifications.desktop = false;
    })
    .await;
    let mut sub = sup.subscribe();
    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: task("Write a Python hello world", None),
        })
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let settled = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(settled.status, ecca::domain::TaskStatus::AwaitingApproval);
    // Everything published up to now, then a marker: no notice among them.
    sup.execute(Command::UpsertClient {
        id: "marker".into(),
        name: "Marker".into(),
        monthly_budget_micros: 1,
    })
    .await
    .unwrap();
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        if let Delivery::Event(e) = d {
            assert!(!matches!(e.as_ref(), Event::Notice { .. }), "{e:?}");
        }
    }
}

/// A terminal's bytes, kept for the test to read.
#[derive(Clone, Default)]
struct Screen(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_console_rings_with_osc_9_and_a_bell_and_strips_control_characters() {
    let screen = Screen::default();
    let mut backend = ratatui::backend::CrosstermBackend::new(screen.clone());
    backend.notify("T-0001 failed: \x1b]0;pwned\x07bad reply");
    let written = String::from_utf8(screen.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        written,
        "\x1b]9;ecca: T-0001 failed: ]0;pwnedbad reply\x07\x07"
    );
}

#[test]
fn the_console_rings_for_a_notice_only_when_terminal_notices_are_on() {
    use ecca::console::app::{Effect, View};
    use ecca::console::{fixture, keymap::Keymap, theme::Theme};
    let mut app = fixture::app(
        Theme::load("dark", None, false).unwrap(),
        Keymap::load(&Default::default()).unwrap(),
        View::Runs,
    );
    let notice = |terminal| {
        Delivery::Event(std::sync::Arc::new(Event::Notice {
            kind: "approval".into(),
            text: "T-0009 awaits approval".into(),
            terminal,
        }))
    };
    let rings = |effects: &[Effect]| {
        effects
            .iter()
            .any(|e| matches!(e, Effect::Notify(t) if t == "T-0009 awaits approval"))
    };
    assert!(rings(&app.apply(&notice(true))));
    assert!(!rings(&app.apply(&notice(false))));
}
