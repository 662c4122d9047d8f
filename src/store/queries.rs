//! Read queries. They run on the reader connection and never block the writer (WAL).

use super::{ClientRecord, ClientSpend, CostTotals, RunRecord, Store, StoreError, TaskRecord};
use crate::domain::TaskStatus;
use crate::money::Micros;
use rusqlite::{OptionalExtension, Row, params};

pub(super) const TASK_COLUMNS: &str =
    "id, client_id, title, description, stack, source, agent_kind, model_mode,
    status, status_reason, budget_micros, deliverable_url, iterations, quality_score, tokens_used,
    cost_micros, model_calls, created_at, updated_at, completed_at, cost_estimated,
    base_branch, acceptance, result_status, batch_id, batch_app, price_micros, compare_group";

const RUN_COLUMNS: &str = "id, task_id, attempt, status, agent_state, fsm_state, tokens_used,
    cost_micros, model_calls, owner_pid, started_at, updated_at, finished_at";

/// A task's latest run as the console lists it: id, agent state, start time.
pub type LatestRun = (String, String, i64);

fn status_of(row: &Row<'_>, idx: usize) -> rusqlite::Result<TaskStatus> {
    let s: String = row.get(idx)?;
    TaskStatus::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown status {s}").into(),
        )
    })
}

pub(super) fn task_from_row(r: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    Ok(TaskRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        stack: r.get(4)?,
        source: r.get(5)?,
        agent_kind: r.get(6)?,
        model_mode: r.get(7)?,
        status: status_of(r, 8)?,
        status_reason: r.get(9)?,
        budget_micros: r.get(10)?,
        deliverable_url: r.get(11)?,
        iterations: r.get(12)?,
        quality_score: r.get(13)?,
        tokens_used: r.get(14)?,
        cost_micros: r.get(15)?,
        model_calls: r.get(16)?,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        completed_at: r.get(19)?,
        cost_estimated: r.get(20)?,
        base_branch: r.get(21)?,
        acceptance: {
            let json: String = r.get(22)?;
            serde_json::from_str(&json).unwrap_or_default()
        },
        result_status: r.get(23)?,
        batch_id: r.get(24)?,
        batch_app: r.get(25)?,
        price_micros: r.get(26)?,
        compare_group: r.get(27)?,
    })
}

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        task_id: r.get(1)?,
        attempt: r.get(2)?,
        status: status_of(r, 3)?,
        agent_state: r.get(4)?,
        fsm_state: r.get(5)?,
        tokens_used: r.get(6)?,
        cost_micros: r.get(7)?,
        model_calls: r.get(8)?,
        owner_pid: r.get(9)?,
        started_at: r.get(10)?,
        updated_at: r.get(11)?,
        finished_at: r.get(12)?,
    })
}

fn client_from_row(r: &Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        monthly_budget_micros: r.get(2)?,
        repo_url: r.get(3)?,
        created_at: r.get(4)?,
    })
}

impl Store {
    /// The task created for a job received from `source` (a webhook's idempotency key).
    pub fn intake_task(&self, source: &str, job_id: &str) -> Result<Option<String>, StoreError> {
        self.reader()
            .query_row(
                "SELECT task_id FROM intake_jobs WHERE source = ?1 AND job_id = ?2",
                params![source, job_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::sql("reading a received job", e))
    }

    /// The latest slot of the daily loop claimed, as its scheduled instant (UTC ms).
    pub fn last_schedule_slot(&self) -> Result<Option<i64>, StoreError> {
        self.reader()
            .query_row("SELECT MAX(slot_at) FROM schedule_slots", [], |r| r.get(0))
            .map_err(|e| StoreError::sql("reading the daily loop's slots", e))
    }

    /// The daily loop's slots claimed: (slot, claimed at, tasks started, note), oldest first.
    pub fn schedule_slots(&self) -> Result<Vec<(i64, i64, i64, String)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT slot_at, processed_at, started, note FROM schedule_slots ORDER BY slot_at",
            )
            .map_err(|e| StoreError::sql("reading the daily loop's slots", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading the daily loop's slots", e))
    }

    /// Tasks queued for the daily loop: pending, never run, not part of a batch; oldest
    /// first.
    pub fn queued_tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM code_tasks
                 WHERE status = 'pending' AND batch_id IS NULL
                   AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.task_id = code_tasks.id)
                 ORDER BY created_at, id"
            ))
            .map_err(|e| StoreError::sql("listing queued tasks", e))?;
        stmt.query_map([], task_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing queued tasks", e))
    }

    /// How long delivered tasks of a stack took from creation to delivery, median, in
    /// milliseconds (the latest 200); None without history.
    pub fn median_delivery_ms(&self, stack: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT completed_at - created_at FROM code_tasks
                 WHERE stack = ?1 AND status = 'delivered' AND completed_at IS NOT NULL
                 ORDER BY completed_at DESC LIMIT 200",
            )
            .map_err(|e| StoreError::sql("reading delivery times", e))?;
        let mut took: Vec<i64> = stmt
            .query_map(params![stack], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading delivery times", e))?;
        took.sort_unstable();
        Ok(took.get(took.len() / 2).copied())
    }

    pub fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.reader()
            .query_row(
                "SELECT id, name, monthly_budget_micros, repo_url, created_at FROM clients WHERE id = ?1",
                params![id],
                client_from_row,
            )
            .optional()
            .map_err(|e| StoreError::sql("reading a client", e))
    }

    /// Every client with its spend in `month`.
    pub fn clients_with_spend(&self, month: &str) -> Result<Vec<ClientSpend>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.id, c.name, c.monthly_budget_micros, c.repo_url, c.created_at,
                        COALESCE(s.spent_micros, 0), COALESCE(s.calls, 0)
                 FROM clients c LEFT JOIN client_month_spend s ON s.client_id = c.id AND s.month = ?1
                 ORDER BY c.id",
            )
            .map_err(|e| StoreError::sql("listing clients", e))?;
        let rows = stmt
            .query_map(params![month], |r| {
                Ok(ClientSpend {
                    client: client_from_row(r)?,
                    month: month.to_string(),
                    spent_micros: r.get(5)?,
                    calls: r.get(6)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| StoreError::sql("listing clients", e))?;
        Ok(rows)
    }

    /// Month-to-date spend of a client, from the counter the cost rows update.
    pub fn client_month_spend(&self, client_id: &str, month: &str) -> Result<Micros, StoreError> {
        self.reader()
            .query_row(
                "SELECT COALESCE((SELECT spent_micros FROM client_month_spend WHERE client_id = ?1 AND month = ?2), 0)",
                params![client_id, month],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::sql("reading a client's spend", e))
    }

    /// Whether any of a client's cost rows in `month` is an estimate.
    pub fn client_month_estimated(&self, client_id: &str, month: &str) -> Result<bool, StoreError> {
        self.reader()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM cost_log WHERE client_id = ?1 AND month = ?2 AND estimated = 1)",
                params![client_id, month],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::sql("reading whether a client's spend is estimated", e))
    }

    /// What the rows a third-party agent's own cost figure added to a task come to (its
    /// `…:reported-difference` rows): none when the agent stated no figure of its own.
    pub fn reported_difference(&self, task_id: &str) -> Result<Option<Micros>, StoreError> {
        self.reader()
            .query_row(
                "SELECT SUM(cost_micros) FROM cost_log WHERE task_id = ?1 AND purpose LIKE 'agent:%:reported-difference'",
                params![task_id],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::sql("reading an agent's own cost figure", e))
    }

    pub fn task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        self.reader()
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM code_tasks WHERE id = ?1"),
                params![id],
                task_from_row,
            )
            .optional()
            .map_err(|e| StoreError::sql("reading a task", e))
    }

    /// The other tasks of `task`'s comparison, by id; none when it is not compared.
    pub fn compare_siblings(&self, task: &TaskRecord) -> Result<Vec<TaskRecord>, StoreError> {
        let Some(group) = &task.compare_group else {
            return Ok(Vec::new());
        };
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM code_tasks WHERE compare_group = ?1 AND id != ?2 ORDER BY id"
            ))
            .map_err(|e| StoreError::sql("reading a task's compared siblings", e))?;
        stmt.query_map(params![group, task.id], task_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading a task's compared siblings", e))
    }

    /// The newest tasks first, at most `limit`.
    pub fn tasks(&self, limit: usize) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM code_tasks ORDER BY created_at DESC, id DESC LIMIT ?1"
            ))
            .map_err(|e| StoreError::sql("listing tasks", e))?;
        stmt.query_map(params![limit as i64], task_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing tasks", e))
    }

    pub fn tasks_of_client(&self, client_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM code_tasks WHERE client_id = ?1 ORDER BY id"
            ))
            .map_err(|e| StoreError::sql("listing tasks", e))?;
        stmt.query_map(params![client_id], task_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("listing tasks", e))
    }

    /// The latest attempt of a task.
    pub fn latest_run(&self, task_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.reader()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE task_id = ?1 ORDER BY attempt DESC LIMIT 1"),
                params![task_id],
                run_from_row,
            )
            .optional()
            .map_err(|e| StoreError::sql("reading a run", e))
    }

    /// The newest `limit` tasks with their latest run's id and agent state, in one query:
    /// what the console's Runs view opens with.
    pub fn console_rows(
        &self,
        limit: usize,
    ) -> Result<Vec<(TaskRecord, Option<LatestRun>)>, StoreError> {
        let conn = self.reader();
        let cols: Vec<String> = TASK_COLUMNS
            .split(',')
            .map(|c| format!("t.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {}, r.id, r.agent_state, r.started_at FROM (SELECT * FROM code_tasks ORDER BY created_at DESC, id DESC LIMIT ?1) t
             LEFT JOIN runs r ON r.task_id = t.id AND r.attempt = (SELECT MAX(attempt) FROM runs WHERE task_id = t.id)
             ORDER BY t.created_at DESC, t.id DESC",
            cols.join(", ")
        );
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(|e| StoreError::sql("listing runs", e))?;
        // The run's columns follow the task's.
        let at = cols.len();
        stmt.query_map(params![limit as i64], |r| {
            let task = task_from_row(r)?;
            let run: Option<String> = r.get(at)?;
            Ok((
                task,
                run.map(|id| {
                    (
                        id,
                        r.get::<_, String>(at + 1).unwrap_or_default(),
                        r.get::<_, i64>(at + 2).unwrap_or_default(),
                    )
                }),
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("listing runs", e))
    }

    /// The highest task number handed out so far (`T-0042` → 42).
    pub fn max_task_number(&self) -> Result<u64, StoreError> {
        self.reader()
            .query_row(
                "SELECT COALESCE(MAX(CAST(SUBSTR(id, 3) AS INTEGER)), 0) FROM code_tasks WHERE id LIKE 'T-%'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| StoreError::sql("reading task ids", e))
    }

    /// How many tasks have one of `statuses`.
    pub fn count_tasks_with(&self, statuses: &[TaskStatus]) -> Result<usize, StoreError> {
        let list: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        self.reader()
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM code_tasks WHERE status IN ({})",
                    list.join(", ")
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| StoreError::sql("counting tasks", e))
    }

    /// Sums over the cost log, optionally for one client or one task.
    pub fn cost_totals(
        &self,
        client_id: Option<&str>,
        task_id: Option<&str>,
    ) -> Result<CostTotals, StoreError> {
        self.reader()
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(cost_micros), 0),
                        COALESCE(SUM(input_tokens + output_tokens + cache_write_tokens + cache_read_tokens), 0)
                 FROM cost_log WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR task_id = ?2)",
                params![client_id, task_id],
                |r| Ok(CostTotals { rows: r.get(0)?, cost_micros: r.get(1)?, tokens: r.get(2)? }),
            )
            .map_err(|e| StoreError::sql("summing the cost log", e))
    }

    /// The kinds and payloads of a run's events, oldest first.
    pub fn run_events(&self, run_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .run_events_at(run_id)?
            .into_iter()
            .map(|(_, k, p)| (k, p))
            .collect())
    }

    /// A run's events with their times: (at, kind, payload), oldest first.
    pub fn run_events_at(&self, run_id: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, kind, payload FROM run_events WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(|e| StoreError::sql("reading run events", e))?;
        stmt.query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading run events", e))
    }

    /// Decisions on a task, oldest first: (decision, note, at).
    pub fn approvals(&self, task_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT decision, note, at FROM approvals WHERE task_id = ?1 ORDER BY id",
            )
            .map_err(|e| StoreError::sql("reading decisions", e))?;
        stmt.query_map(params![task_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading decisions", e))
    }

    /// Artifacts of a run: (kind, name, content).
    /// A client's repository, if it has one: its URL and whether a token is stored.
    pub fn client_repo(&self, client_id: &str) -> Result<Option<(String, bool)>, StoreError> {
        let conn = self.reader();
        conn.query_row(
            "SELECT COALESCE(m.repo_url, c.repo_url), m.github_token_encrypted IS NOT NULL
             FROM clients c LEFT JOIN client_mcp_configs m ON m.client_id = c.id
             WHERE c.id = ?1",
            params![client_id],
            |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<bool>>(1)?)),
        )
        .optional()
        .map(|row| {
            row.and_then(|(url, token)| {
                url.filter(|u| !u.trim().is_empty())
                    .map(|u| (u, token.unwrap_or(false)))
            })
        })
        .map_err(|e| StoreError::sql("reading a client's repository", e))
    }

    /// The audit rows of a task, oldest first: (run id, entry).
    pub fn audit(
        &self,
        task_id: &str,
    ) -> Result<Vec<(String, crate::repo::AuditEntry)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT run_id, at, tool, args_digest, outcome, duration_ms FROM audit
                 WHERE task_id = ?1 ORDER BY id",
            )
            .map_err(|e| StoreError::sql("reading the audit trail", e))?;
        stmt.query_map(params![task_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                crate::repo::AuditEntry {
                    at: r.get(1)?,
                    tool: r.get(2)?,
                    args_digest: r.get(3)?,
                    outcome: r.get(4)?,
                    duration_ms: r.get::<_, i64>(5)?.max(0) as u64,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sql("reading the audit trail", e))
    }

    /// Runs whose worktree has not been removed: (run id, worktree name, run status).
    pub fn run_worktrees(&self) -> Result<Vec<(String, String, TaskStatus)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, worktree, status FROM runs WHERE worktree IS NOT NULL ORDER BY id",
            )
            .map_err(|e| StoreError::sql("reading run worktrees", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, status_of(r, 2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading run worktrees", e))
    }

    pub fn artifacts(&self, run_id: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT kind, name, content FROM artifacts WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(|e| StoreError::sql("reading artifacts", e))?;
        stmt.query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| StoreError::sql("reading artifacts", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CostRow, WriteOp};

    fn task(id: &str, status: TaskStatus) -> TaskRecord {
        TaskRecord {
            id: id.into(),
            client_id: "acme".into(),
            title: "t".into(),
            description: String::new(),
            stack: "python".into(),
            source: "manual".into(),
            agent_kind: "builtin".into(),
            model_mode: "offline".into(),
            status,
            status_reason: None,
            budget_micros: 1,
            deliverable_url: None,
            iterations: 0,
            quality_score: None,
            tokens_used: 0,
            cost_micros: 0,
            cost_estimated: false,
            model_calls: 0,
            created_at: 0,
            updated_at: 0,
            completed_at: None,
            base_branch: None,
            acceptance: Vec::new(),
            result_status: None,
            batch_id: None,
            batch_app: None,
            price_micros: None,
            compare_group: None,
        }
    }

    #[tokio::test]
    async fn task_numbers_and_status_counts_come_from_sql() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.max_task_number().unwrap(), 0);
        let client = ClientRecord {
            id: "acme".into(),
            name: "Acme".into(),
            monthly_budget_micros: 1,
            repo_url: None,
            created_at: 0,
        };
        store
            .write(vec![
                WriteOp::InsertClient(client),
                WriteOp::InsertTask(Box::new(task("T-0009", TaskStatus::Running))),
                WriteOp::InsertTask(Box::new(task("T-10000", TaskStatus::Delivered))),
                WriteOp::InsertTask(Box::new(task("T-0010", TaskStatus::Pending))),
            ])
            .await
            .unwrap();
        assert_eq!(store.max_task_number().unwrap(), 10_000);
        assert_eq!(
            store
                .count_tasks_with(&[TaskStatus::Running, TaskStatus::Pending])
                .unwrap(),
            2
        );
        assert_eq!(store.count_tasks_with(&[TaskStatus::Failed]).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_month_with_one_estimated_cost_row_is_estimated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let client = ClientRecord {
            id: "acme".into(),
            name: "Acme".into(),
            monthly_budget_micros: 1,
            repo_url: None,
            created_at: 0,
        };
        let run = RunRecord {
            id: "R-1".into(),
            task_id: "T-0001".into(),
            attempt: 1,
            status: TaskStatus::Running,
            agent_state: "coding".into(),
            fsm_state: "{}".into(),
            tokens_used: 0,
            cost_micros: 0,
            model_calls: 0,
            owner_pid: None,
            started_at: 0,
            updated_at: 0,
            finished_at: None,
        };
        let cost = |month: &str, estimated: bool| {
            WriteOp::Cost(CostRow {
                at: 0,
                month: month.into(),
                client_id: "acme".into(),
                task_id: "T-0001".into(),
                run_id: "R-1".into(),
                provider: "anthropic".into(),
                model: "m".into(),
                purpose: "code".into(),
                simulated: false,
                usage: crate::money::Usage::default(),
                cost_micros: 10,
                reserved_micros: 10,
                outcome: "ok".into(),
                estimated,
            })
        };
        store
            .write(vec![
                WriteOp::InsertClient(client),
                WriteOp::InsertTask(Box::new(task("T-0001", TaskStatus::Running))),
                WriteOp::InsertRun(run),
                cost("2026-10", true),
                cost("2026-11", false),
            ])
            .await
            .unwrap();
        assert!(!store.client_month_estimated("acme", "2026-11").unwrap());
        store.write(vec![cost("2026-11", true)]).await.unwrap();
        assert!(store.client_month_estimated("acme", "2026-11").unwrap());
        assert!(!store.client_month_estimated("other", "2026-11").unwrap());
    }
}
