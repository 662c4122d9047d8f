//! Batches in the store: the batch rows, their tasks, and the history the forecast reads.

use super::{Store, StoreError, TaskRecord};
use crate::money::Micros;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A batch as stored. `status`: running | finished | cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// The manifest's text as launched.
    pub manifest: String,
    pub status: String,
    pub concurrency: u32,
    pub budget_micros: Option<Micros>,
    /// The forecast made at launch (JSON of `crate::batch::forecast::Forecast`).
    pub forecast: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const BATCH_COLUMNS: &str = "id, client_id, name, manifest, status, concurrency, budget_micros,
    forecast, created_at, finished_at";

fn batch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRecord> {
    Ok(BatchRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        name: r.get(2)?,
        manifest: r.get(3)?,
        status: r.get(4)?,
        concurrency: r.get(5)?,
        budget_micros: r.get(6)?,
        forecast: r.get(7)?,
        created_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

impl Store {
    pub fn batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.reader()
            .query_row(
                &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1"),
                params![id],
                batch_from_row,
            )
            .optional()
            .map_err(|e| StoreError::sql("reading a batch", e))
    }

    /// Every batch, newest first.
    pub fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {BATCH_COLUMNS} FROM batches ORDER BY created_at DESC, id DESC"
            ))
            .map_err(|e| StoreError::sql("listing batches", e))?;
        stmt.query_map([], batch_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing batches", e))
    }

    /// The highest batch number in use (`B-0042` → 42).
    pub fn max_batch_number(&self) -> Result<u64, StoreError> {
        let ids: Vec<String> = {
            let conn = self.reader();
            let mut stmt = conn
                .prepare_cached("SELECT id FROM batches")
                .map_err(|e| StoreError::sql("numbering batches", e))?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| StoreError::sql("numbering batches", e))?
        };
        Ok(ids
            .iter()
            .filter_map(|id| id.strip_prefix("B-").and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0))
    }

    /// The tasks of a batch, in manifest order.
    pub fn batch_tasks(&self, batch_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {} FROM code_tasks WHERE batch_id = ?1 ORDER BY id",
                super::queries::TASK_COLUMNS
            ))
            .map_err(|e| StoreError::sql("listing a batch's tasks", e))?;
        stmt.query_map(params![batch_id], super::queries::task_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing a batch's tasks", e))
    }

    /// Cost of every task that reached the approval gate (awaiting it, delivered or
    /// rejected) with `model_mode`, by stack: the forecast's history. One pass.
    pub fn finished_task_costs(
        &self,
        model_mode: &str,
    ) -> Result<Vec<(String, Micros)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT stack, cost_micros FROM code_tasks
                 WHERE model_mode = ?1 AND agent_kind = 'builtin' AND cost_micros > 0
                   AND status IN ('awaiting_approval', 'delivered', 'rejected')",
            )
            .map_err(|e| StoreError::sql("reading the cost history", e))?;
        stmt.query_map(params![model_mode], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading the cost history", e))
    }
}
