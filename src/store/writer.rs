//! The one writer. A dedicated thread owns the write connection and drains a bounded queue:
//! whatever is waiting is committed in one transaction, so many small writes (events, cost
//! rows) cost one commit. Counter changes of the cost rows in a batch are summed and applied
//! once per transaction, in the same transaction as the rows.

use super::{ClientRecord, CostRow, RunRecord, StoreError, TaskRecord};
use crate::domain::TaskStatus;
use crate::money::Micros;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// How many queued messages one transaction takes at most.
const MAX_BATCH: usize = 1024;
/// Queue length; senders wait when the writer is this far behind.
const QUEUE_CAPACITY: usize = 8192;

/// One change to the store.
#[derive(Debug, Clone)]
pub enum WriteOp {
    InsertClient(ClientRecord),
    InsertTask(Box<TaskRecord>),
    InsertRun(RunRecord),
    /// Checkpoint of a run: its status, visible agent state and state-machine snapshot.
    UpdateRun {
        run_id: String,
        status: TaskStatus,
        agent_state: String,
        fsm_state: String,
        finished_at: Option<i64>,
    },
    UpdateTask {
        task_id: String,
        status: TaskStatus,
        reason: Option<String>,
        iterations: i64,
        quality_score: Option<f64>,
        deliverable_url: Option<String>,
        completed_at: Option<i64>,
    },
    Event {
        run_id: String,
        at: i64,
        kind: String,
        payload: String,
    },
    Artifact {
        run_id: String,
        kind: String,
        name: String,
        content: String,
        at: i64,
    },
    /// A cost row and the counters it changes (task, run, client month).
    Cost(CostRow),
    Approval {
        task_id: String,
        run_id: String,
        decision: String,
        note: String,
        at: i64,
    },
    /// Marks every in-flight run (and its task) interrupted; used once at supervisor start.
    InterruptInFlight {
        at: i64,
    },
    /// Where a repository run works: its worktree (None once removed), branch and base.
    RunRepo {
        run_id: String,
        worktree: Option<String>,
        branch: String,
        base_commit: String,
    },
    /// A repository run's result status, on the run and its task.
    ResultStatus {
        task_id: String,
        run_id: String,
        status: String,
    },
    /// One thing a run did: a tool call, a file write, a command, a git operation.
    Audit {
        task_id: String,
        run_id: String,
        entry: crate::repo::AuditEntry,
    },
    /// The operator changed a client's monthly cap or a task's budget: the new value and
    /// the row that says who-knows-why, in one transaction.
    BudgetChange(super::BudgetChangeRecord),
    /// A batch as launched.
    InsertBatch(Box<super::BatchRecord>),
    /// A batch ended (`finished`, `cancelled`) or runs again (`running`, after a retry).
    BatchStatus {
        batch_id: String,
        status: String,
        finished_at: Option<i64>,
    },
    /// The job from outside (a webhook's) that a task was created for: its idempotency key.
    IntakeJob {
        source: String,
        job_id: String,
        task_id: String,
        at: i64,
    },
    /// Slots of the daily loop claimed (scheduled instant, claimed at, note); a slot
    /// claimed twice fails the transaction.
    ScheduleSlots(Vec<(i64, i64, String)>),
    /// How many tasks a claimed slot started.
    ScheduleStarted {
        slot_at: i64,
        started: i64,
    },
    /// A client's monthly retainer (None: no retainer).
    ClientRetainer {
        client_id: String,
        retainer_micros: Option<crate::money::Micros>,
    },
}

struct Message {
    ops: Vec<WriteOp>,
    ack: Option<oneshot::Sender<Result<(), StoreError>>>,
}

pub(super) struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

impl WriterHandle {
    pub(super) fn spawn(conn: Connection) -> Result<WriterHandle, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("ecca-store-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError(format!("could not start the store writer thread: {e}")))?;
        Ok(WriterHandle { tx })
    }

    pub(super) async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message {
                ops,
                ack: Some(ack),
            })
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    pub(super) async fn write_later(&self, ops: Vec<WriteOp>) {
        if self.tx.send(Message { ops, ack: None }).await.is_err() {
            tracing::error!("store writer stopped; a write was lost");
        }
    }
}

fn stopped() -> StoreError {
    StoreError("the store writer has stopped; restart ecca".into())
}

/// Writes after which the writer checkpoints the WAL as soon as it has nothing queued.
const CHECKPOINT_WHEN_IDLE_AFTER: usize = 256;
/// Writes after which it checkpoints even under constant load, so the WAL stays bounded.
const CHECKPOINT_ALWAYS_AFTER: usize = 100_000;

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Message>) {
    // Checkpoints happen when the queue runs dry, not in the middle of a burst of writes.
    if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", 0) {
        tracing::warn!("could not move WAL checkpoints to idle time: {e}");
    }
    let mut batch: Vec<Message> = Vec::with_capacity(MAX_BATCH);
    let mut writes_since_checkpoint: usize = 0;
    loop {
        let first = match rx.try_recv() {
            Ok(m) => m,
            Err(mpsc::error::TryRecvError::Empty) => {
                if writes_since_checkpoint >= CHECKPOINT_WHEN_IDLE_AFTER {
                    checkpoint(&conn);
                    writes_since_checkpoint = 0;
                }
                match rx.blocking_recv() {
                    Some(m) => m,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        writes_since_checkpoint += batch.iter().map(|m| m.ops.len()).sum::<usize>();
        if writes_since_checkpoint >= CHECKPOINT_ALWAYS_AFTER {
            checkpoint(&conn);
            writes_since_checkpoint = 0;
        }
        match commit(&mut conn, batch.iter().map(|m| m.ops.as_slice())) {
            Ok(()) => {
                for m in batch.drain(..) {
                    if let Some(ack) = m.ack {
                        let _ = ack.send(Ok(()));
                    }
                }
            }
            Err(_) => {
                // One bad message must not sink its neighbours: commit each alone.
                for m in batch.drain(..) {
                    let result = commit(&mut conn, std::iter::once(m.ops.as_slice()));
                    if let Err(e) = &result {
                        tracing::error!("store write failed: {e}");
                    }
                    if let Some(ack) = m.ack {
                        let _ = ack.send(result);
                    }
                }
            }
        }
    }
}

/// Copies the WAL back into the database file without blocking readers or writers.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!("WAL checkpoint failed: {e}");
    }
}

/// Summed counter changes of the cost rows in one transaction.
#[derive(Default)]
struct CounterDeltas {
    tasks: HashMap<String, (i64, Micros, i64)>,
    runs: HashMap<String, (i64, Micros, i64)>,
    months: HashMap<(String, String), (Micros, i64)>,
}

impl CounterDeltas {
    /// Adds a row's tokens, cost and call. Keys are copied only the first time a batch
    /// sees them: a burst of rows for the same task allocates nothing here.
    fn add(&mut self, c: &CostRow) {
        let tokens = c.usage.total() as i64;
        let bump = |v: &mut (i64, Micros, i64)| *v = (v.0 + tokens, v.1 + c.cost_micros, v.2 + 1);
        match self.tasks.get_mut(&c.task_id) {
            Some(v) => bump(v),
            None => {
                self.tasks
                    .insert(c.task_id.clone(), (tokens, c.cost_micros, 1));
            }
        }
        match self.runs.get_mut(&c.run_id) {
            Some(v) => bump(v),
            None => {
                self.runs
                    .insert(c.run_id.clone(), (tokens, c.cost_micros, 1));
            }
        }
        let month = self
            .months
            .iter_mut()
            .find(|((client, month), _)| *client == c.client_id && *month == c.month);
        match month {
            Some((_, v)) => *v = (v.0 + c.cost_micros, v.1 + 1),
            None => {
                self.months
                    .insert((c.client_id.clone(), c.month.clone()), (c.cost_micros, 1));
            }
        }
    }
}

fn commit<'a>(
    conn: &mut Connection,
    messages: impl Iterator<Item = &'a [WriteOp]>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(|e| StoreError::sql("starting a transaction", e))?;
    let mut deltas = CounterDeltas::default();
    for ops in messages {
        for op in ops {
            apply(&tx, op, &mut deltas)?;
        }
    }
    apply_deltas(&tx, &deltas)?;
    tx.commit().map_err(|e| StoreError::sql("committing", e))
}

fn apply(
    tx: &rusqlite::Transaction<'_>,
    op: &WriteOp,
    deltas: &mut CounterDeltas,
) -> Result<(), StoreError> {
    let result = match op {
        WriteOp::InsertClient(c) => tx
            .prepare_cached(
                "INSERT INTO clients (id, name, monthly_budget_micros, repo_url, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name,
                   monthly_budget_micros = excluded.monthly_budget_micros,
                   repo_url = COALESCE(excluded.repo_url, clients.repo_url)",
            )
            .and_then(|mut s| s.execute(params![c.id, c.name, c.monthly_budget_micros, c.repo_url, c.created_at])),
        WriteOp::IntakeJob {
            source,
            job_id,
            task_id,
            at,
        } => tx
            .prepare_cached(
                "INSERT INTO intake_jobs (source, job_id, task_id, received_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![source, job_id, task_id, at])),
        WriteOp::ScheduleSlots(slots) => {
            let mut done = Ok(0);
            for (slot_at, at, note) in slots {
                done = tx
                    .prepare_cached(
                        "INSERT INTO schedule_slots (slot_at, processed_at, note) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![slot_at, at, note]));
                if done.is_err() {
                    break;
                }
            }
            done
        }
        WriteOp::ScheduleStarted { slot_at, started } => tx
            .prepare_cached("UPDATE schedule_slots SET started = ?2 WHERE slot_at = ?1")
            .and_then(|mut s| s.execute(params![slot_at, started])),
        WriteOp::InsertTask(t) => tx
            .prepare_cached(
                "INSERT INTO code_tasks (id, client_id, title, description, stack, source, agent_kind,
                   model_mode, status, status_reason, budget_micros, created_at, updated_at,
                   base_branch, acceptance, batch_id, batch_app, price_micros, compare_group)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15,
                   ?16, ?17, ?18)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t.id, t.client_id, t.title, t.description, t.stack, t.source, t.agent_kind,
                    t.model_mode, t.status.as_str(), t.status_reason, t.budget_micros, t.created_at,
                    t.base_branch, serde_json::to_string(&t.acceptance).unwrap_or_else(|_| "[]".into()),
                    t.batch_id, t.batch_app, t.price_micros, t.compare_group
                ])
            }),
        WriteOp::InsertRun(r) => tx
            .prepare_cached(
                "INSERT INTO runs (id, task_id, attempt, status, agent_state, fsm_state, owner_pid,
                   started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.id, r.task_id, r.attempt, r.status.as_str(), r.agent_state, r.fsm_state,
                    r.owner_pid, r.started_at
                ])
            }),
        WriteOp::UpdateRun { run_id, status, agent_state, fsm_state, finished_at } => tx
            .prepare_cached(
                "UPDATE runs SET status = ?2, agent_state = ?3, fsm_state = ?4,
                   finished_at = COALESCE(?5, finished_at), updated_at = ?6, owner_pid = ?7
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run_id, status.as_str(), agent_state, fsm_state, finished_at,
                    crate::time::now_ms(), std::process::id()
                ])
            }),
        WriteOp::UpdateTask { task_id, status, reason, iterations, quality_score, deliverable_url, completed_at } => tx
            .prepare_cached(
                "UPDATE code_tasks SET status = ?2, status_reason = ?3, iterations = ?4,
                   quality_score = COALESCE(?5, quality_score),
                   deliverable_url = COALESCE(?6, deliverable_url),
                   completed_at = ?7, updated_at = ?8
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    task_id, status.as_str(), reason, iterations, quality_score, deliverable_url,
                    completed_at, crate::time::now_ms()
                ])
            }),
        WriteOp::Event { run_id, at, kind, payload } => tx
            .prepare_cached("INSERT INTO run_events (run_id, at, kind, payload) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![run_id, at, kind, payload])),
        WriteOp::Artifact { run_id, kind, name, content, at } => tx
            .prepare_cached("INSERT INTO artifacts (run_id, kind, name, content, at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![run_id, kind, name, content, at])),
        WriteOp::Cost(c) => {
            deltas.add(c);
            insert_cost_row(tx, c)
        }
        WriteOp::Approval { task_id, run_id, decision, note, at } => tx
            .prepare_cached("INSERT INTO approvals (task_id, run_id, decision, note, at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![task_id, run_id, decision, note, at])),
        WriteOp::InterruptInFlight { at } => interrupt_in_flight(tx, *at),
        WriteOp::RunRepo { run_id, worktree, branch, base_commit } => tx
            .prepare_cached(
                "UPDATE runs SET worktree = ?2, branch = COALESCE(NULLIF(?3, ''), branch),
                   base_commit = COALESCE(NULLIF(?4, ''), base_commit) WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![run_id, worktree, branch, base_commit])),
        WriteOp::ResultStatus { task_id, run_id, status } => tx
            .prepare_cached("UPDATE runs SET result_status = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![run_id, status]))
            .and_then(|_| {
                tx.prepare_cached("UPDATE code_tasks SET result_status = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![task_id, status]))
            }),
        WriteOp::BudgetChange(c) => {
            let update = if c.kind == super::BUDGET_KIND_TASK {
                "UPDATE code_tasks SET budget_micros = ?2 WHERE id = ?1"
            } else {
                "UPDATE clients SET monthly_budget_micros = ?2 WHERE id = ?1"
            };
            let target = c.task_id.as_deref().unwrap_or(&c.client_id);
            tx.prepare_cached(update)
                .and_then(|mut s| s.execute(params![target, c.new_micros]))
                .and_then(|_| {
                    tx.prepare_cached(
                        "INSERT INTO budget_changes (at, client_id, task_id, kind, old_micros,
                           new_micros, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            c.at, c.client_id, c.task_id, c.kind, c.old_micros, c.new_micros,
                            c.note
                        ])
                    })
                })
        }
        WriteOp::InsertBatch(b) => tx
            .prepare_cached(
                "INSERT INTO batches (id, client_id, name, manifest, status, created_at,
                   concurrency, budget_micros, forecast, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    b.id, b.client_id, b.name, b.manifest, b.status, b.created_at, b.concurrency,
                    b.budget_micros, b.forecast, b.finished_at
                ])
            }),
        WriteOp::BatchStatus { batch_id, status, finished_at } => tx
            .prepare_cached("UPDATE batches SET status = ?2, finished_at = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![batch_id, status, finished_at])),
        WriteOp::ClientRetainer { client_id, retainer_micros } => tx
            .prepare_cached("UPDATE clients SET retainer_micros = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![client_id, retainer_micros])),
        WriteOp::Audit { task_id, run_id, entry } => tx
            .prepare_cached(
                "INSERT INTO audit (task_id, run_id, at, tool, args_digest, outcome, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    task_id, run_id, entry.at, entry.tool, entry.args_digest, entry.outcome,
                    entry.duration_ms as i64
                ])
            }),
    };
    result
        .map(|_| ())
        .map_err(|e| StoreError::sql(op_name(op), e))
}

/// Inserts one cost row with a cached statement (and nothing else). The writer uses it for
/// every cost row; the benchmark uses it alone as the plain-insert ceiling.
pub fn insert_cost_row(conn: &Connection, c: &CostRow) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO cost_log (at, month, client_id, task_id, run_id, provider, model, purpose,
           simulated, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens,
           cost_micros, reserved_micros, outcome, estimated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        c.at,
        c.month,
        c.client_id,
        c.task_id,
        c.run_id,
        c.provider,
        c.model,
        c.purpose,
        c.simulated,
        c.usage.input_tokens as i64,
        c.usage.output_tokens as i64,
        c.usage.cache_write_tokens as i64,
        c.usage.cache_read_tokens as i64,
        c.cost_micros,
        c.reserved_micros,
        c.outcome,
        c.estimated
    ])
}

fn interrupt_in_flight(tx: &rusqlite::Transaction<'_>, at: i64) -> rusqlite::Result<usize> {
    let statuses: Vec<String> = TaskStatus::ALL
        .into_iter()
        .filter(|s| s.is_in_flight())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let in_flight = format!("({})", statuses.join(", "));
    let runs = tx.execute(
        &format!(
            "UPDATE runs SET status = 'interrupted', updated_at = ?1 WHERE status IN {in_flight}"
        ),
        params![at],
    )?;
    tx.execute(
        &format!(
            "UPDATE code_tasks SET status = 'interrupted', updated_at = ?1,
               status_reason = 'the ecca process stopped while this task was ' || status || '; run `ecca resume ' || id || '` to continue'
             WHERE status IN {in_flight}
               AND EXISTS (SELECT 1 FROM runs r WHERE r.task_id = code_tasks.id)"
        ),
        params![at],
    )?;
    // A task with no run never started (a batch's app waiting its turn): it stays pending
    // for its batch to start.
    Ok(runs)
}

fn apply_deltas(tx: &rusqlite::Transaction<'_>, d: &CounterDeltas) -> Result<(), StoreError> {
    let counters = |e| StoreError::sql("updating cost counters", e);
    for (task, (tokens, cost, calls)) in &d.tasks {
        tx.prepare_cached(
            "UPDATE code_tasks SET tokens_used = tokens_used + ?2, cost_micros = cost_micros + ?3,
               model_calls = model_calls + ?4 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![task, tokens, cost, calls]))
        .map_err(counters)?;
    }
    for (run, (tokens, cost, calls)) in &d.runs {
        tx.prepare_cached(
            "UPDATE runs SET tokens_used = tokens_used + ?2, cost_micros = cost_micros + ?3,
               model_calls = model_calls + ?4 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![run, tokens, cost, calls]))
        .map_err(counters)?;
    }
    for ((client, month), (cost, calls)) in &d.months {
        tx.prepare_cached(
            "INSERT INTO client_month_spend (client_id, month, spent_micros, calls) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(client_id, month) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros,
               calls = calls + excluded.calls",
        )
        .and_then(|mut s| s.execute(params![client, month, cost, calls]))
        .map_err(counters)?;
    }
    Ok(())
}

fn op_name(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::InsertClient(_) => "saving a client",
        WriteOp::InsertTask(_) => "saving a task",
        WriteOp::InsertRun(_) => "saving a run",
        WriteOp::UpdateRun { .. } => "checkpointing a run",
        WriteOp::UpdateTask { .. } => "updating a task",
        WriteOp::Event { .. } => "saving a run event",
        WriteOp::Artifact { .. } => "saving an artifact",
        WriteOp::Cost(_) => "saving a cost row",
        WriteOp::Approval { .. } => "saving a decision",
        WriteOp::InterruptInFlight { .. } => "marking interrupted runs",
        WriteOp::RunRepo { .. } => "recording a run's worktree",
        WriteOp::ResultStatus { .. } => "recording a result status",
        WriteOp::Audit { .. } => "saving an audit row",
        WriteOp::BudgetChange(_) => "saving a budget change",
        WriteOp::ClientRetainer { .. } => "saving a client's retainer",
        WriteOp::InsertBatch(_) => "saving a batch",
        WriteOp::IntakeJob { .. } => "recording a received job",
        WriteOp::ScheduleSlots(_) => "claiming a slot of the daily loop",
        WriteOp::ScheduleStarted { .. } => "recording a slot's work",
        WriteOp::BatchStatus { .. } => "updating a batch",
    }
}
