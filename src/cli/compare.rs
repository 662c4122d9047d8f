//! `ecca run --compare KIND`: the same spec run by two agent kinds as sibling tasks, both
//! followed to where they rest and reported together; and, after `ecca approve` of one
//! side, what became of the others.

use super::handle::Handle;
use super::output;
use super::run::{StopSignals, outcome, say_task, task_doc};
use crate::domain::TaskStatus;
use crate::supervisor::{Command, NewTask, Reply};

/// Starts the comparison, follows both sides until they rest and reports them. Fails only
/// when neither side reached the approval gate.
pub(super) async fn run_compare(
    handle: &mut Handle,
    task: NewTask,
    agents: Vec<String>,
    signals: &mut StopSignals,
    as_json: bool,
) -> Result<(), String> {
    let reply = handle
        .execute(Command::StartCompare {
            task: Box::new(task),
            agents,
        })
        .await?;
    let Reply::CompareStarted { task_ids } = reply else {
        return Err("the supervisor did not start the comparison".into());
    };
    let mut settled = Vec::new();
    for task_id in &task_ids {
        settled.push(handle.settle(task_id, signals).await?);
    }
    if as_json {
        let docs = settled
            .iter()
            .map(|t| task_doc(handle.store(), t))
            .collect::<Result<Vec<_>, String>>()?;
        output::say_json(&serde_json::json!({
            "compare_group": task_ids.first(),
            "tasks": docs,
        }))?;
    } else {
        for task in &settled {
            say_task(handle.store(), task)?;
        }
    }
    let waiting: Vec<&str> = settled
        .iter()
        .filter(|t| t.status == TaskStatus::AwaitingApproval)
        .map(|t| t.id.as_str())
        .collect();
    if waiting.is_empty() {
        let failures: Vec<String> = settled.iter().filter_map(|t| outcome(t).err()).collect();
        return Err(format!(
            "neither side of the comparison reached the approval gate: {}",
            failures.join("; ")
        ));
    }
    if !as_json {
        output::say(&format!(
            "compare {} side by side in the console's Approvals view (or `ecca diff ID`); approving one rejects the other: `ecca approve {}`",
            task_ids.join(" and "),
            waiting[0]
        ));
    }
    Ok(())
}

/// After `task_id` was approved: follows the other sides of its comparison (rejected or
/// cancelled once it was delivered) until they rest, and says where each ended.
pub(super) async fn follow_siblings(
    handle: &mut Handle,
    task_id: &str,
    signals: &mut StopSignals,
) -> Result<(), String> {
    let Some(task) = handle.store().task(task_id).map_err(|e| e.0)? else {
        return Ok(());
    };
    let siblings = handle.store().compare_siblings(&task).map_err(|e| e.0)?;
    for sibling in siblings {
        let rested = handle.settle(&sibling.id, signals).await?;
        output::say(&format!(
            "{} ({}, compared with {}) {}",
            rested.id, rested.agent_kind, task_id, rested.status
        ));
    }
    Ok(())
}
