//! The supervisor owns runs: it creates tasks, queues their runs under a concurrency limit,
//! holds the approval gate, and answers [`Command`]s while publishing [`Event`]s. Frontends
//! (the console, the headless CLI) talk to it through that contract only.
//!
//! One supervisor works a data dir at a time (an exclusive lock file), so its in-memory
//! reservations are the only ones, and on start it can safely mark runs that were in
//! flight when the last process died as `interrupted`.

mod batches;
mod budgets;
pub mod bus;
mod compare;
mod containers;
mod lock;
pub mod protocol;
mod runs;
pub mod socket;

pub use batches::BATCH_CAP_REASON;
pub use bus::{Delivery, EventBus, Subscription, WeakEventBus};
pub use compare::compare_kinds;
pub use protocol::{ApprovalReview, Command, Event, NewBatch, NewTask, Reply, RunText};

use crate::config::{Config, ProviderKind};
use crate::domain::{STACKS, TaskStatus};
use crate::engine::driver::ModelRouter;
use crate::engine::tools::{NoTools, Tools};
use crate::ledger::Ledger;
use crate::llm::{AnthropicProvider, OfflineProvider, OpenAiProvider, Provider};
use crate::money::Micros;
use crate::store::{ClientRecord, Store, TaskRecord, WriteOp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// A refused command or a failed start, as a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SupervisorError(pub String);

impl From<crate::store::StoreError> for SupervisorError {
    fn from(e: crate::store::StoreError) -> Self {
        SupervisorError(e.0)
    }
}

/// Reads an environment variable (injectable so tests need not touch the process env).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct SupervisorOptions {
    pub data_dir: PathBuf,
    pub config: Config,
    pub tools: Arc<dyn Tools>,
    pub env: EnvLookup,
    /// A store already open on `data_dir`, to share instead of opening another.
    pub store: Option<Store>,
    /// Clients' repositories: worktrees, diffs, delivery as branch and pull request. None:
    /// git and client-github on the data dir ([`crate::repo::workspaces::GitWorkspaces`]).
    pub workspaces: Option<Arc<dyn crate::engine::workspace::Workspaces>>,
}

impl SupervisorOptions {
    pub fn new(data_dir: PathBuf, config: Config) -> Self {
        SupervisorOptions {
            data_dir,
            config,
            tools: Arc::new(NoTools),
            env: Arc::new(|k| std::env::var(k).ok()),
            store: None,
            workspaces: None,
        }
    }
}

#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    data_dir: PathBuf,
    store: Store,
    ledger: Ledger,
    bus: EventBus,
    tools: Arc<dyn Tools>,
    workspaces: Arc<dyn crate::engine::workspace::Workspaces>,
    env: EnvLookup,
    slots: Arc<Semaphore>,
    active: Mutex<HashMap<String, CancellationToken>>,
    /// Why a task's latest run stopped short because the store refused a write; cleared
    /// when the task runs again.
    store_failures: Mutex<HashMap<String, String>>,
    /// Cancelled once, when the process is asked to stop: every run stops where it is,
    /// keeping its last checkpoint, instead of ending as cancelled.
    shutdown: CancellationToken,
    run_exited: Notify,
    next_task: AtomicU64,
    routers: Mutex<HashMap<&'static str, Arc<ModelRouter>>>,
    _lock: lock::DataDirLock,
}

impl Supervisor {
    /// Takes the data dir, opens the store, and marks runs left in flight as interrupted.
    pub async fn start(options: SupervisorOptions) -> Result<Supervisor, SupervisorError> {
        let lock = lock::DataDirLock::acquire(&options.data_dir)?;
        let store = match options.store {
            Some(store) => store,
            None => Store::open(&options.data_dir)?,
        };
        let interrupted = count_in_flight(&store)?;
        store
            .write(vec![WriteOp::InterruptInFlight {
                at: crate::time::now_ms(),
            }])
            .await?;
        let next_task = store.max_task_number()? + 1;
        let workspaces = match options.workspaces {
            Some(w) => w,
            None => Arc::new(crate::repo::workspaces::GitWorkspaces::new(
                options.data_dir.clone(),
                options.config.clone(),
                store.clone(),
                options.env.clone(),
            )),
        };
        sweep_worktrees(&store, workspaces.as_ref()).await?;
        let inner = Inner {
            ledger: Ledger::new(store.clone()),
            bus: EventBus::new(options.config.supervisor.event_capacity),
            slots: Arc::new(Semaphore::new(options.config.supervisor.concurrency)),
            config: options.config,
            data_dir: options.data_dir,
            store,
            tools: options.tools,
            workspaces,
            env: options.env,
            active: Mutex::new(HashMap::new()),
            store_failures: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            run_exited: Notify::new(),
            next_task: AtomicU64::new(next_task),
            routers: Mutex::new(HashMap::new()),
            _lock: lock,
        };
        let sup = Supervisor {
            inner: Arc::new(inner),
        };
        // The notifier holds the bus weakly: it ends when the supervisor goes.
        tokio::spawn(crate::notify::run(
            sup.inner.bus.subscribe(),
            sup.inner.bus.downgrade(),
            sup.inner.store.clone(),
            sup.inner.config.notifications.clone(),
        ));
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "runs were in flight when ecca last stopped; marked interrupted"
            );
            sup.inner.bus.publish(Event::Recovered { interrupted });
        }
        Ok(sup)
    }

    pub fn subscribe(&self) -> Subscription {
        self.inner.bus.subscribe()
    }

    /// The bus the runs publish on, for benchmarks that stand in for runs.
    pub fn event_bus(&self) -> EventBus {
        self.inner.bus.clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The provider new tasks run on, with `auto` resolved from the keys present.
    pub fn default_provider(&self) -> ProviderKind {
        self.inner.config.resolve_provider(self.inner.env.as_ref())
    }

    /// One line on which tools back the engine's steps.
    pub fn tools_description(&self) -> String {
        self.inner.tools.describe()
    }

    /// What each tool's calls did so far, per server (the Containers view).
    pub fn tool_stats(&self) -> Vec<crate::engine::tools::ToolCallStats> {
        self.inner.tools.tool_stats()
    }

    /// Carries out a command.
    pub async fn execute(&self, command: Command) -> Result<Reply, SupervisorError> {
        match command {
            Command::UpsertClient {
                id,
                name,
                monthly_budget_micros,
            } => {
                self.upsert_client(&id, &name, monthly_budget_micros)
                    .await?;
                Ok(Reply::Done)
            }
            Command::StartTask { task } => self.start_task(task).await,
            Command::StartCompare { task, agents } => self.start_compare(*task, agents).await,
            Command::QueueTask { task } => self.queue_task(*task).await,
            Command::Approve { task_id, review } => self.approve(&task_id, review).await,
            Command::Revise { task_id, note } => self.decide(&task_id, "revise", note).await,
            Command::Reject { task_id, note } => self.decide(&task_id, "reject", note).await,
            Command::Cancel { task_id } => self.cancel(&task_id).await,
            Command::Retry { task_id } => self.retry(&task_id).await,
            Command::Resume { task_id } => self.resume(&task_id).await,
            Command::SetClientCap {
                client_id,
                monthly_budget_micros,
                note,
            } => {
                self.set_client_cap(&client_id, monthly_budget_micros, &note)
                    .await
            }
            Command::SetTaskBudget {
                task_id,
                budget_micros,
                note,
            } => self.set_task_budget(&task_id, budget_micros, &note).await,
            Command::SetClientRetainer {
                client_id,
                retainer_micros,
            } => self.set_client_retainer(&client_id, retainer_micros).await,
            Command::StartBatch { batch } => self.start_batch(*batch).await,
            Command::RetryBatch { batch_id } => self.retry_batch(&batch_id).await,
            Command::CancelBatch { batch_id } => self.cancel_batch(&batch_id).await,
            Command::Container { name, verb } => self.container(&name, verb).await,
            Command::StartServer { server, client } => {
                self.start_server(&server, client.as_deref()).await
            }
            Command::BuildImages => self.build_images().await,
        }
    }

    /// Checks a new task without creating anything.
    pub fn validate_task(&self, task: &NewTask) -> Result<(), SupervisorError> {
        validate_task(&self.inner.store, task)
    }
}

/// Removes the worktrees of runs that ended (or vanished) while no process was there to
/// clean up: every run that can still go on (awaiting approval, paused, interrupted)
/// keeps its own.
async fn sweep_worktrees(
    store: &Store,
    workspaces: &dyn crate::engine::workspace::Workspaces,
) -> Result<(), SupervisorError> {
    let runs = store.run_worktrees()?;
    let keep: std::collections::HashSet<String> = runs
        .iter()
        .filter(|(_, _, status)| !status.is_terminal())
        .map(|(_, name, _)| name.clone())
        .collect();
    let removed = workspaces.sweep(&keep).await;
    let gone: Vec<WriteOp> = runs
        .iter()
        .filter(|(_, name, status)| status.is_terminal() || removed.contains(name))
        .filter(|(_, name, _)| !keep.contains(name))
        .map(|(run_id, _, _)| WriteOp::RunRepo {
            run_id: run_id.clone(),
            worktree: None,
            branch: String::new(),
            base_commit: String::new(),
        })
        .collect();
    if !removed.is_empty() {
        tracing::info!(?removed, "removed the worktrees of runs that ended");
    }
    if !gone.is_empty() {
        store.write(gone).await?;
    }
    Ok(())
}

/// Checks a new task against the store without writing anything.
pub fn validate_task(store: &Store, task: &NewTask) -> Result<(), SupervisorError> {
    validate_task_fields(task)?;
    if store.client(&task.client_id)?.is_none() {
        return Err(SupervisorError(format!(
            "client {} does not exist; add it with `ecca clients add {} --name NAME --budget-usd N` or pick one from `ecca clients list`",
            task.client_id, task.client_id
        )));
    }
    Ok(())
}

/// Checks a new task's own fields.
pub fn validate_task_fields(task: &NewTask) -> Result<(), SupervisorError> {
    if task.title.trim().is_empty() {
        return Err(SupervisorError(
            "the task is empty; describe what to build, e.g. --task \"Write a Python hello world\""
                .into(),
        ));
    }
    if task.title.len() > 4_000 {
        return Err(SupervisorError(
            "the task title is longer than 4,000 characters; put the detail in the description"
                .into(),
        ));
    }
    if !STACKS.contains(&task.stack.as_str()) {
        return Err(SupervisorError(format!(
            "stack {:?} is not one ecca knows; use one of {}",
            task.stack,
            STACKS.join(", ")
        )));
    }
    if task.agent_kind != "builtin" {
        crate::agents::registry::kind(&task.agent_kind).map_err(SupervisorError)?;
    }
    if task.budget_micros.is_some_and(|b| b <= 0) {
        return Err(SupervisorError("a task budget must be more than $0".into()));
    }
    Ok(())
}

impl Supervisor {
    async fn upsert_client(
        &self,
        id: &str,
        name: &str,
        budget: Micros,
    ) -> Result<(), SupervisorError> {
        save_client(&self.inner.store, id, name, budget).await?;
        self.inner.ledger.refresh_client(id);
        Ok(())
    }

    /// Waits until no run of `task_id` is working, then returns the task as stored. A run
    /// that stopped because the store refused a write is an error: the stored task still
    /// says it is working, and the sentence says what happened and how to go on.
    pub async fn wait_settled(&self, task_id: &str) -> Result<TaskRecord, SupervisorError> {
        loop {
            let notified = self.inner.run_exited.notified();
            if !self.is_active(task_id) {
                if let Some(why) = self.store_failure(task_id) {
                    return Err(SupervisorError(format!(
                        "task {task_id} stopped because the store failed: {why}; once that is fixed, the next start marks the task interrupted and `ecca resume {task_id}` continues it"
                    )));
                }
                let mut task = self
                    .inner
                    .store
                    .task(task_id)?
                    .ok_or_else(|| SupervisorError(format!("task {task_id} does not exist")))?;
                // A run stopped by the supervisor's own stop exits before `interrupt_all`
                // marks it in the store: say what it is, not the `running` still stored.
                if self.inner.shutdown.is_cancelled() && task.status.is_in_flight() {
                    task.status = TaskStatus::Interrupted;
                    task.status_reason = Some(format!(
                        "the supervisor stopped; `ecca resume {task_id}` continues it from its last checkpoint"
                    ));
                }
                return Ok(task);
            }
            notified.await;
        }
    }

    /// Why the latest run of `task_id` stopped short in the store, if it did.
    pub fn store_failure(&self, task_id: &str) -> Option<String> {
        self.inner
            .store_failures
            .lock()
            .ok()
            .and_then(|f| f.get(task_id).cloned())
    }

    /// Stops every run where it is (each keeps its last checkpoint), marks them
    /// interrupted in the store, and returns their task ids, for `ecca resume`. Used when
    /// the process is asked to stop.
    pub async fn interrupt_all(&self) -> Result<Vec<String>, SupervisorError> {
        let mut stopped: Vec<String> = self
            .inner
            .active
            .lock()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default();
        stopped.sort();
        self.inner.shutdown.cancel();
        self.wait_all_settled().await;
        self.inner
            .store
            .write(vec![WriteOp::InterruptInFlight {
                at: crate::time::now_ms(),
            }])
            .await?;
        Ok(stopped)
    }

    /// Waits until no run at all is working.
    pub async fn wait_all_settled(&self) {
        loop {
            let notified = self.inner.run_exited.notified();
            if self.active_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn active_count(&self) -> usize {
        self.inner.active.lock().map(|a| a.len()).unwrap_or(0)
    }

    fn is_active(&self, task_id: &str) -> bool {
        self.inner
            .active
            .lock()
            .map(|a| a.contains_key(task_id))
            .unwrap_or(false)
    }

    fn task_or_error(&self, task_id: &str) -> Result<TaskRecord, SupervisorError> {
        self.inner.store.task(task_id)?.ok_or_else(|| {
            SupervisorError(format!(
                "task {task_id} does not exist; `ecca tasks` lists the tasks"
            ))
        })
    }

    /// The model router for a provider, built once. A run that makes no model call
    /// (delivering an approved deliverable, recording a rejection or a cancel) does not
    /// need the key: without one it gets a router whose calls the provider refuses.
    fn router(&self, mode: &str, needs_model: bool) -> Result<Arc<ModelRouter>, SupervisorError> {
        let kind = ProviderKind::parse(mode).unwrap_or(ProviderKind::Offline);
        let key: &'static str = kind.as_str();
        if let Some(r) = self
            .inner
            .routers
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
        {
            return Ok(r);
        }
        let c = &self.inner.config;
        let env = self.inner.env.as_ref();
        let mut keyless = false;
        let provider: Arc<dyn Provider> = match kind {
            ProviderKind::Anthropic => {
                let endpoint = c.providers.anthropic(env);
                let api_key = match env(&endpoint.api_key_env).filter(|k| !k.is_empty()) {
                    Some(key) => key,
                    None if !needs_model => {
                        keyless = true;
                        String::new()
                    }
                    None => {
                        return Err(SupervisorError(format!(
                            "this task runs on anthropic but {} is not set; export the key or use --dry-run",
                            endpoint.api_key_env
                        )));
                    }
                };
                Arc::new(AnthropicProvider::new(endpoint, api_key))
            }
            ProviderKind::Openai => {
                let endpoint = c.providers.openai(env);
                let api_key = env(&endpoint.api_key_env).filter(|k| !k.is_empty());
                Arc::new(OpenAiProvider::new(endpoint, api_key))
            }
            ProviderKind::Offline | ProviderKind::Auto => Arc::new(OfflineProvider::new(
                std::time::Duration::from_millis(c.offline.latency_ms),
            )),
        };
        let prices = [&c.models.planner, &c.models.writer, &c.models.cheap]
            .into_iter()
            .filter_map(|m| c.price_of(m).map(|p| (m.clone(), p)))
            .collect();
        let router = Arc::new(ModelRouter {
            provider,
            planner: c.models.planner.clone(),
            writer: c.models.writer.clone(),
            cheap: c.models.cheap.clone(),
            prices,
        });
        if !keyless && let Ok(mut m) = self.inner.routers.lock() {
            m.insert(key, router.clone());
        }
        Ok(router)
    }
}

/// Checks and saves a client (its creation time kept when it exists). Returns whether it
/// existed before. The supervisor and `ecca clients add` both save clients through here.
pub async fn save_client(
    store: &Store,
    id: &str,
    name: &str,
    budget: Micros,
) -> Result<bool, SupervisorError> {
    validate_client(id, name, budget)?;
    let existing = store.client(id)?;
    let created_at = existing
        .as_ref()
        .map(|c| c.created_at)
        .unwrap_or_else(crate::time::now_ms);
    store
        .write(vec![WriteOp::InsertClient(ClientRecord {
            id: id.into(),
            name: name.trim().into(),
            monthly_budget_micros: budget,
            repo_url: None,
            created_at,
        })])
        .await?;
    Ok(existing.is_some())
}

/// Checks a client's fields.
pub fn validate_client(id: &str, name: &str, budget: Micros) -> Result<(), SupervisorError> {
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !id_ok {
        return Err(SupervisorError(format!(
            "client id {id:?} is not usable; use 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    if name.trim().is_empty() {
        return Err(SupervisorError("a client needs a name; pass --name".into()));
    }
    if budget < 0 {
        return Err(SupervisorError(
            "a monthly budget cannot be negative".into(),
        ));
    }
    Ok(())
}

fn count_in_flight(store: &Store) -> Result<usize, SupervisorError> {
    let in_flight: Vec<TaskStatus> = TaskStatus::ALL
        .into_iter()
        .filter(|s| s.is_in_flight())
        .collect();
    Ok(store.count_tasks_with(&in_flight)?)
}

/// Statuses a decision applies to.
fn expect_status(
    task: &TaskRecord,
    allowed: &[TaskStatus],
    action: &str,
) -> Result<(), SupervisorError> {
    if allowed.contains(&task.status) {
        return Ok(());
    }
    Err(SupervisorError(format!(
        "task {} is {}, so it cannot be {action}; {}",
        task.id,
        task.status,
        match task.status {
            TaskStatus::Running
            | TaskStatus::Pending
            | TaskStatus::Revising
            | TaskStatus::Delivering => "wait for it to reach awaiting_approval".to_string(),
            TaskStatus::Interrupted | TaskStatus::Paused =>
                "resume it first with `ecca resume`".to_string(),
            // The advice names only commands that accept a task in this status.
            TaskStatus::AwaitingApproval => format!(
                "it awaits a decision: `ecca approve {0}`, `ecca revise {0} --note TEXT` or `ecca reject {0} --note TEXT`",
                task.id
            ),
            TaskStatus::Delivered => "it was delivered; there is nothing left to do".to_string(),
            _ => "it has ended; `ecca retry` starts a new attempt".to_string(),
        }
    )))
}
