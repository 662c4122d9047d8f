//! Read queries for money: budget changes, retainers, and a month's cost rows aggregated
//! the way the Clients view and the client report need them (one pass over the month's
//! rows per query, never one query per client or task).

use super::{BudgetChangeRecord, Store, StoreError};
use crate::money::Micros;
use rusqlite::params;

/// A month's cost rows of one task, model and kind (real or simulated), summed per day.
#[derive(Debug, Clone, PartialEq)]
pub struct CostGroup {
    pub client_id: String,
    pub task_id: String,
    pub model: String,
    pub simulated: bool,
    /// Days since the epoch (UTC) of the rows summed here.
    pub day: i64,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: Micros,
}

/// A task that spent in the month, or was created in it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthTask {
    pub task_id: String,
    pub client_id: String,
    pub title: String,
    pub status: String,
    pub budget_micros: Micros,
    pub price_micros: Option<Micros>,
    pub deliverable_url: Option<String>,
    pub created_at: i64,
    pub attempts: i64,
}

/// An approval decision with its note and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub task_id: String,
    pub run_id: String,
    pub decision: String,
    pub note: String,
    pub at: i64,
}

const DAY_MS: i64 = 86_400_000;

impl Store {
    /// The budget changes of a client (every task's too), or of one task, oldest first.
    pub fn budget_changes(
        &self,
        client_id: Option<&str>,
        task_id: Option<&str>,
    ) -> Result<Vec<BudgetChangeRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, client_id, task_id, kind, old_micros, new_micros, note
                 FROM budget_changes
                 WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR task_id = ?2)
                 ORDER BY at, id",
            )
            .map_err(|e| StoreError::sql("reading budget changes", e))?;
        stmt.query_map(params![client_id, task_id], |r| {
            Ok(BudgetChangeRecord {
                at: r.get(0)?,
                client_id: r.get(1)?,
                task_id: r.get(2)?,
                kind: r.get(3)?,
                old_micros: r.get(4)?,
                new_micros: r.get(5)?,
                note: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("reading budget changes", e))
    }

    /// Every client's monthly retainer, for the clients that have one.
    pub fn retainers(&self) -> Result<Vec<(String, Micros)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, retainer_micros FROM clients WHERE retainer_micros IS NOT NULL",
            )
            .map_err(|e| StoreError::sql("reading retainers", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading retainers", e))
    }

    /// The month's cost rows summed per client, task, model, kind and day; one client's or
    /// every client's.
    pub fn month_cost_groups(
        &self,
        month: &str,
        client_id: Option<&str>,
    ) -> Result<Vec<CostGroup>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT client_id, task_id, model, simulated, at / ?3 AS day, COUNT(*),
                        SUM(input_tokens), SUM(output_tokens), SUM(cost_micros)
                 FROM cost_log
                 WHERE month = ?1 AND (?2 IS NULL OR client_id = ?2)
                 GROUP BY client_id, task_id, model, simulated, day
                 ORDER BY client_id, task_id, model, simulated, day",
            )
            .map_err(|e| StoreError::sql("summing the month's costs", e))?;
        stmt.query_map(params![month, client_id, DAY_MS], |r| {
            Ok(CostGroup {
                client_id: r.get(0)?,
                task_id: r.get(1)?,
                model: r.get(2)?,
                simulated: r.get(3)?,
                day: r.get(4)?,
                calls: r.get(5)?,
                input_tokens: r.get(6)?,
                output_tokens: r.get(7)?,
                cost_micros: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("summing the month's costs", e))
    }

    /// Tasks with a cost row in the month or created within `[from_ms, to_ms)`, with their
    /// attempt counts; one client's or every client's. Newest first.
    pub fn month_tasks(
        &self,
        month: &str,
        from_ms: i64,
        to_ms: i64,
        client_id: Option<&str>,
    ) -> Result<Vec<MonthTask>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT t.id, t.client_id, t.title, t.status, t.budget_micros, t.price_micros,
                        t.deliverable_url, t.created_at,
                        (SELECT COUNT(*) FROM runs r WHERE r.task_id = t.id)
                 FROM code_tasks t
                 WHERE (?4 IS NULL OR t.client_id = ?4)
                   AND ((t.created_at >= ?2 AND t.created_at < ?3)
                        OR t.id IN (SELECT DISTINCT task_id FROM cost_log
                                    WHERE month = ?1 AND (?4 IS NULL OR client_id = ?4)))
                 ORDER BY t.created_at DESC, t.id DESC",
            )
            .map_err(|e| StoreError::sql("listing the month's tasks", e))?;
        stmt.query_map(params![month, from_ms, to_ms, client_id], |r| {
            Ok(MonthTask {
                task_id: r.get(0)?,
                client_id: r.get(1)?,
                title: r.get(2)?,
                status: r.get(3)?,
                budget_micros: r.get(4)?,
                price_micros: r.get(5)?,
                deliverable_url: r.get(6)?,
                created_at: r.get(7)?,
                attempts: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("listing the month's tasks", e))
    }

    /// Every paused task with its latest run and the reason it paused.
    pub fn paused_runs(&self) -> Result<Vec<(String, String, String, String)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT t.client_id, t.id, COALESCE((SELECT r.id FROM runs r WHERE r.task_id = t.id
                          ORDER BY r.attempt DESC LIMIT 1), ''),
                        COALESCE(t.status_reason, 'paused')
                 FROM code_tasks t WHERE t.status = 'paused' ORDER BY t.id",
            )
            .map_err(|e| StoreError::sql("listing paused runs", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing paused runs", e))
    }

    /// Approval decisions made within `[from_ms, to_ms)` on one client's tasks.
    pub fn month_decisions(
        &self,
        client_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Decision>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT a.task_id, a.run_id, a.decision, a.note, a.at
                 FROM approvals a JOIN code_tasks t ON t.id = a.task_id
                 WHERE t.client_id = ?1 AND a.at >= ?2 AND a.at < ?3
                 ORDER BY a.at, a.id",
            )
            .map_err(|e| StoreError::sql("reading the month's decisions", e))?;
        stmt.query_map(params![client_id, from_ms, to_ms], |r| {
            Ok(Decision {
                task_id: r.get(0)?,
                run_id: r.get(1)?,
                decision: r.get(2)?,
                note: r.get(3)?,
                at: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("reading the month's decisions", e))
    }
}
