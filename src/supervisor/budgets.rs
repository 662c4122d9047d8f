//! The operator's money decisions: a client's monthly cap, a task's budget, a client's
//! retainer. Each change is stored with its time and note in the same write as the new
//! value, announced as an event, and takes effect on the next call at once. A raised cap
//! resumes the runs the old one paused.

use super::{Event, Reply, Supervisor, SupervisorError};
use crate::domain::TaskStatus;
use crate::money::{Micros, format_usd};
use crate::store::{BUDGET_KIND_CLIENT, BUDGET_KIND_TASK, BudgetChangeRecord, WriteOp};

fn check_amount(what: &str, micros: Micros) -> Result<(), SupervisorError> {
    if micros < 0 {
        return Err(SupervisorError(format!(
            "{what} cannot be negative ({}); give an amount of 0 or more",
            format_usd(micros)
        )));
    }
    Ok(())
}

fn check_note(what: &str, note: &str) -> Result<(), SupervisorError> {
    if note.trim().is_empty() {
        return Err(SupervisorError(format!(
            "changing {what} needs a note that says why; it is kept with the change"
        )));
    }
    Ok(())
}

impl Supervisor {
    /// What the client's calls in flight hold right now.
    pub fn client_reserved(&self, client_id: &str) -> Micros {
        self.inner.ledger.client_reserved(client_id)
    }

    /// Money held by in-flight calls, for every client that has some.
    pub fn reserved_by_client(&self) -> std::collections::BTreeMap<String, Micros> {
        self.inner.ledger.reserved_by_client()
    }

    pub(super) async fn set_client_cap(
        &self,
        client_id: &str,
        monthly_budget_micros: Micros,
        note: &str,
    ) -> Result<Reply, SupervisorError> {
        let what = format!("the monthly cap of {client_id}");
        check_amount(&what, monthly_budget_micros)?;
        check_note(&what, note)?;
        let client = self.inner.store.client(client_id)?.ok_or_else(|| {
            SupervisorError(format!(
                "client {client_id} does not exist; `ecca clients list` lists the clients"
            ))
        })?;
        let change = BudgetChangeRecord {
            at: crate::time::now_ms(),
            client_id: client_id.to_string(),
            task_id: None,
            kind: BUDGET_KIND_CLIENT.into(),
            old_micros: client.monthly_budget_micros,
            new_micros: monthly_budget_micros,
            note: note.trim().to_string(),
        };
        self.inner
            .store
            .write(vec![WriteOp::BudgetChange(change.clone())])
            .await?;
        self.inner.ledger.refresh_client(client_id);
        self.announce(change);
        self.resume_paused_on_cap(client_id, monthly_budget_micros)
            .await?;
        Ok(Reply::Done)
    }

    /// Resumes the client's runs paused on its cap when the cap now leaves room. A run that
    /// cannot resume stays paused and the error says which.
    async fn resume_paused_on_cap(
        &self,
        client_id: &str,
        cap: Micros,
    ) -> Result<(), SupervisorError> {
        let month = crate::time::current_month();
        let spent = self.inner.store.client_month_spend(client_id, &month)?;
        if spent >= cap {
            return Ok(());
        }
        let mut failures = Vec::new();
        for task in self.inner.store.tasks_of_client(client_id)? {
            if task.status != TaskStatus::Paused {
                continue;
            }
            if let Err(e) = self.resume(&task.id).await {
                failures.push(format!("{}: {}", task.id, e.0));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(SupervisorError(format!(
                "the cap was saved but some paused runs did not resume ({}); resume them with \
                 `ecca resume TASK`",
                failures.join("; ")
            )))
        }
    }

    pub(super) async fn set_task_budget(
        &self,
        task_id: &str,
        budget_micros: Micros,
        note: &str,
    ) -> Result<Reply, SupervisorError> {
        let what = format!("the budget of {task_id}");
        check_amount(&what, budget_micros)?;
        check_note(&what, note)?;
        let task = self.task_or_error(task_id)?;
        let ended = matches!(
            task.status,
            TaskStatus::Delivered | TaskStatus::Rejected | TaskStatus::Cancelled
        );
        if ended {
            return Err(SupervisorError(format!(
                "task {task_id} is {}, so its budget can no longer change; retry a failed task \
                 instead",
                task.status
            )));
        }
        let change = BudgetChangeRecord {
            at: crate::time::now_ms(),
            client_id: task.client_id.clone(),
            task_id: Some(task_id.to_string()),
            kind: BUDGET_KIND_TASK.into(),
            old_micros: task.budget_micros,
            new_micros: budget_micros,
            note: note.trim().to_string(),
        };
        self.inner
            .store
            .write(vec![WriteOp::BudgetChange(change.clone())])
            .await?;
        self.inner.ledger.set_task_cap(task_id, budget_micros);
        self.announce(change);
        Ok(Reply::Done)
    }

    pub(super) async fn set_client_retainer(
        &self,
        client_id: &str,
        retainer_micros: Option<Micros>,
    ) -> Result<Reply, SupervisorError> {
        if let Some(m) = retainer_micros {
            check_amount(&format!("the retainer of {client_id}"), m)?;
        }
        if self.inner.store.client(client_id)?.is_none() {
            return Err(SupervisorError(format!(
                "client {client_id} does not exist; `ecca clients list` lists the clients"
            )));
        }
        self.inner
            .store
            .write(vec![WriteOp::ClientRetainer {
                client_id: client_id.to_string(),
                retainer_micros,
            }])
            .await?;
        Ok(Reply::Done)
    }

    fn announce(&self, change: BudgetChangeRecord) {
        self.inner.bus.publish(Event::BudgetChanged {
            client_id: change.client_id,
            task_id: change.task_id,
            old_micros: change.old_micros,
            new_micros: change.new_micros,
            note: change.note,
        });
    }
}
