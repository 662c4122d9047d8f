//! The supervisor: concurrency limit, cancel, and the serialisable contract.

use crate::common;

use ecca::config::ProviderKind;
use ecca::domain::TaskStatus;
use ecca::engine::fsm::AgentState;
use ecca::supervisor::{Command, Delivery, Event, NewTask, Reply, Supervisor};
use std::time::Duration;

fn task(title: &str) -> NewTask {
    NewTask {
        client_id: "acme".into(),
        title: title.into(),
        description: String::new(),
        stack: "python".into(),
        source: "manual".into(),
        agent_kind: "builtin".into(),
        budget_micros: None,
        provider: Some(ProviderKind::Offline),
        base_branch: None,
        price_micros: None,
        acceptance: Vec::new(),
    }
}

async fn start(dir: &std::path::Path, concurrency: usize, latency_ms: u64) -> Supervisor {
    common::supervisor_with_acme(dir, |c| {
        c.supervisor.concurrency = concurrency;
        c.offline.latency_ms = latency_ms;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_runs_work_at_once_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sup = start(dir.path(), 2, 40).await;
    let mut sub = sup.subscribe();
    for i in 0..5 {
        sup.execute(Command::StartTask {
            task: task(&format!("hello {i}")),
        })
        .await
        .unwrap();
    }
    let mut working = 0i32;
    let mut most = 0;
    let mut settled = 0;
    while settled < 5 {
        let Some(Delivery::Event(e)) = tokio::time::timeout(Duration::from_secs(120), sub.next())
            .await
            .unwrap()
        else {
            panic!("the bus lagged or closed")
        };
        match &*e {
            Event::RunStarted { .. } => {
                working += 1;
                most = most.max(working);
            }
            Event::AwaitingApproval { .. } => {
                working -= 1;
                settled += 1;
            }
            _ => {}
        }
    }
    assert_eq!(most, 2, "two at a time");
    for i in 1..=5 {
        assert_eq!(
            sup.store()
                .task(&format!("T-{i:04}"))
                .unwrap()
                .unwrap()
                .status,
            TaskStatus::AwaitingApproval
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_live_run_and_keeps_its_costs() {
    let dir = tempfile::tempdir().unwrap();
    let sup = start(dir.path(), 4, 300).await;
    let mut sub = sup.subscribe();
    let Reply::TaskStarted { task_id, .. } = sup
        .execute(Command::StartTask {
            task: task("hello"),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    // Wait until the write call has begun (the plan was priced), then cancel mid-call.
    loop {
        if let Some(Delivery::Event(e)) = sub.next().await
            && matches!(
                &*e,
                Event::ModelStarted { purpose, .. } if purpose == "write"
            )
        {
            break;
        }
    }
    sup.execute(Command::Cancel {
        task_id: task_id.clone(),
    })
    .await
    .unwrap();
    let t = sup.wait_settled(&task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    let totals = sup.store().cost_totals(None, Some(&task_id)).unwrap();
    assert_eq!(
        totals.cost_micros, t.cost_micros,
        "the task's cost is its rows, the cancelled call included"
    );
    assert!(
        totals.rows >= 2,
        "the plan and the cancelled write are both charged: {totals:?}"
    );
    let err = sup
        .execute(Command::Approve {
            task_id: task_id.clone(),
            review: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.0,
        format!(
            "task {task_id} is cancelled, so it cannot be approved; it has ended; `ecca retry` starts a new attempt"
        )
    );
}

#[test]
fn commands_and_events_are_plain_tagged_json() {
    let c: Command =
        serde_json::from_str(r#"{"command":"revise","task_id":"T-0001","note":"add tests"}"#)
            .unwrap();
    assert_eq!(
        c,
        Command::Revise {
            task_id: "T-0001".into(),
            note: "add tests".into()
        }
    );
    let start = Command::StartTask { task: task("x") };
    let back: Command = serde_json::from_str(&serde_json::to_string(&start).unwrap()).unwrap();
    assert_eq!(back, start);
    let e = Event::StateChanged {
        task_id: "T-1".into(),
        run_id: "T-1/r1".into(),
        state: AgentState::Coding,
        step: "lint".into(),
        iteration: 2,
    };
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["event"], "state_changed");
    assert_eq!(json["state"], "coding");
    assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
}
