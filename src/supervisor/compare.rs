//! Comparisons: one spec run by two agent kinds as sibling tasks, each in its own worktree
//! with its own budget, for the operator to choose between side by side. Delivering one
//! ends the other: rejected with a note when it waits at the gate, cancelled (with the same
//! note recorded) while it still works.

use super::runs::{new_run, task_created};
use super::{Event, NewTask, Reply, Supervisor, SupervisorError};
use crate::domain::TaskStatus;
use crate::engine::driver::Kick;
use crate::engine::fsm::AgentEvent;
use crate::store::{TaskRecord, WriteOp};

/// The agent kinds of a comparison: two, different, each one ecca knows.
pub fn compare_kinds(agents: &[String]) -> Result<Vec<String>, SupervisorError> {
    let kinds: Vec<String> = agents.iter().map(|a| a.trim().to_string()).collect();
    if kinds.len() != 2 {
        return Err(SupervisorError(format!(
            "a comparison runs one spec with two agent kinds, not {}; name two, e.g. builtin and claude-code",
            kinds.len()
        )));
    }
    if kinds[0] == kinds[1] {
        return Err(SupervisorError(format!(
            "a comparison needs two different agent kinds, and both are {}; pick another for one side (builtin, claude-code, codex, aider)",
            kinds[0]
        )));
    }
    for kind in &kinds {
        if kind != "builtin" {
            crate::agents::registry::kind(kind).map_err(SupervisorError)?;
        }
    }
    Ok(kinds)
}

impl Supervisor {
    /// Creates one task per agent kind in a single transaction, the first task's id as
    /// their comparison, and starts them all; nothing is stored when any side is refused.
    pub(super) async fn start_compare(
        &self,
        task: NewTask,
        agents: Vec<String>,
    ) -> Result<Reply, SupervisorError> {
        let kinds = compare_kinds(&agents)?;
        let sides: Vec<NewTask> = kinds
            .iter()
            .map(|kind| NewTask {
                agent_kind: kind.clone(),
                ..task.clone()
            })
            .collect();
        for side in &sides {
            self.validate_task(side)?;
        }
        let mode = self.resolved_mode(task.provider);
        self.router(mode.as_str(), true)?;
        let now = crate::time::now_ms();
        let mut records: Vec<TaskRecord> = sides
            .iter()
            .map(|side| self.new_task_record(side, mode, now))
            .collect();
        let group = records[0].id.clone();
        let mut writes = Vec::new();
        let mut ready = Vec::new();
        for record in &mut records {
            record.compare_group = Some(group.clone());
            let agent = self.new_agent(record)?;
            let run = new_run(record, 1, &agent);
            writes.push(WriteOp::InsertTask(Box::new(record.clone())));
            writes.push(WriteOp::InsertRun(run.clone()));
            ready.push((record.clone(), run, agent));
        }
        self.inner.store.write(writes).await?;
        let task_ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        for (record, run, agent) in ready {
            self.inner.bus.publish(task_created(&record));
            let kick = Kick::event(AgentEvent::Start, vec![]);
            self.spawn_run(record, run.id, 1, agent, kick, false, true)?;
        }
        Ok(Reply::CompareStarted { task_ids })
    }

    /// Refuses to approve a side once another side of its comparison was approved.
    pub(super) fn check_compared(&self, task: &TaskRecord) -> Result<(), SupervisorError> {
        let chosen = self
            .inner
            .store
            .compare_siblings(task)?
            .into_iter()
            .find(|s| matches!(s.status, TaskStatus::Delivering | TaskStatus::Delivered));
        match chosen {
            Some(s) => Err(SupervisorError(format!(
                "task {} cannot be approved: {} ({}) of the same comparison was approved and is {}; reject {} with `ecca reject {} --note TEXT`",
                task.id, s.id, s.agent_kind, s.status, task.id, task.id
            ))),
            None => Ok(()),
        }
    }

    /// After `delivered` was delivered: every other side of its comparison is rejected
    /// when it waits at the gate and cancelled while it still works, the note saying
    /// which side was chosen. A side that has ended is left as it is.
    pub(super) async fn close_comparison(&self, delivered: &TaskRecord) {
        let siblings = match self.inner.store.compare_siblings(delivered) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(task = %delivered.id, error = %e.0, "could not read the compared tasks");
                return;
            }
        };
        let note = format!(
            "not chosen: {} ({}) of the same comparison was delivered",
            delivered.id, delivered.agent_kind
        );
        for sibling in siblings {
            let closed = match sibling.status {
                TaskStatus::AwaitingApproval => {
                    self.decide(&sibling.id, "reject", note.clone()).await
                }
                TaskStatus::Pending
                | TaskStatus::Running
                | TaskStatus::Revising
                | TaskStatus::Paused
                | TaskStatus::Interrupted => self.cancel_compared(&sibling, &note).await,
                _ => continue,
            };
            if let Err(e) = closed {
                tracing::warn!(task = %sibling.id, error = %e.0, "a compared task was not closed");
                self.inner.bus.publish(Event::Note {
                    task_id: sibling.id.clone(),
                    run_id: String::new(),
                    text: format!("{note}, but it could not be closed: {}", e.0),
                });
            }
        }
    }

    /// Records the reason with the task's run, then cancels it.
    async fn cancel_compared(
        &self,
        sibling: &TaskRecord,
        note: &str,
    ) -> Result<Reply, SupervisorError> {
        if let Some(run) = self.inner.store.latest_run(&sibling.id)? {
            self.inner
                .store
                .write(vec![WriteOp::Approval {
                    task_id: sibling.id.clone(),
                    run_id: run.id,
                    decision: "reject".into(),
                    note: note.to_string(),
                    at: crate::time::now_ms(),
                }])
                .await?;
        }
        self.inner.bus.publish(Event::DecisionRecorded {
            task_id: sibling.id.clone(),
            decision: "reject".into(),
            note: note.to_string(),
        });
        self.cancel(&sibling.id).await
    }
}
