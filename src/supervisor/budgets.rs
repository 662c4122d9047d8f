//! The operator's money decisions: a client's monthly cap, a task's budget, a client's
//! retainer. Each change is stored with its time and note and announced as an event.

use super::{Reply, Supervisor, SupervisorError};
use crate::money::Micros;

impl Supervisor {
    pub(super) async fn set_client_cap(
        &self,
        client_id: &str,
        _monthly_budget_micros: Micros,
        _note: &str,
    ) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "setting the monthly cap of {client_id} from here is not available in this build; \
             use `ecca clients add` to change it"
        )))
    }

    pub(super) async fn set_task_budget(
        &self,
        task_id: &str,
        _budget_micros: Micros,
        _note: &str,
    ) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "changing the budget of {task_id} is not available in this build"
        )))
    }

    pub(super) async fn set_client_retainer(
        &self,
        client_id: &str,
        _retainer_micros: Option<Micros>,
    ) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "setting the retainer of {client_id} is not available in this build"
        )))
    }
}
