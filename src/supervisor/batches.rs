//! Batches: many apps launched from one manifest, run under their own concurrency limit
//! inside the global one, retried or cancelled as one.

use super::{NewBatch, Reply, Supervisor, SupervisorError};

impl Supervisor {
    pub(super) async fn start_batch(&self, batch: NewBatch) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "launching the batch {} is not available in this build",
            batch.source
        )))
    }

    pub(super) async fn retry_batch(&self, batch_id: &str) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "retrying batch {batch_id} is not available in this build"
        )))
    }

    pub(super) async fn cancel_batch(&self, batch_id: &str) -> Result<Reply, SupervisorError> {
        Err(SupervisorError(format!(
            "cancelling batch {batch_id} is not available in this build"
        )))
    }
}
