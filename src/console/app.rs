//! The console as a state machine: terminal input and supervisor events in, effects out
//! (commands for the supervisor, loads for the store, quitting). No IO happens here and
//! nothing here draws. Each view owns its state, its keys and its drawing (`views::*`);
//! `App` holds what they share (the task rows, the notice, the open dialog) and routes.

use super::form::{Form, FormEnd};
use super::keymap::{Action, Context, Keymap};
use super::model::{Detail, RunRow};
use super::theme::Theme;
use super::views::approvals::{self, ApprovalsView};
use super::views::batch::BatchView;
use super::views::clients::ClientsView;
use super::views::containers::ContainersView;
use super::views::detail::DetailView;
use super::views::dialogs;
use super::views::runs::RunsView;
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::supervisor::{Command, Delivery, Event};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use std::cell::Cell;

pub use super::views::detail::{PANES, REPO_PANES};
pub use super::views::dialogs::{NoteFor, Overlay};
pub use super::views::runs::Sort;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Runs,
    Detail,
    Approvals,
    NewTask,
    Clients,
    Batch,
    Containers,
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    LoadDetail {
        task_id: String,
        request: u64,
    },
    /// The detail of the other side of a comparison (Approvals view); the newest wins.
    LoadSibling {
        task_id: String,
        request: u64,
    },
    /// Read the rows again from the store (after missing events).
    ReloadRows,
    /// Every client's month (Clients view, header warning).
    LoadClients {
        request: u64,
    },
    /// The forecast of the manifest at `path` (Batch view).
    LoadForecast {
        path: String,
        request: u64,
    },
    /// The batches launched so far, newest first (Batch view).
    LoadBatches {
        request: u64,
    },
    /// One batch with its apps (Batch view's scoreboard).
    LoadBatch {
        batch_id: String,
        request: u64,
    },
    /// Start watching the managed containers (once, when the Containers view opens).
    WatchContainers,
    /// Follow a container's logs; a newer request replaces the one before.
    FollowLogs {
        container: String,
        request: u64,
    },
    StopLogs,
    /// ecca's per-tool call counts (Containers view).
    LoadToolStats,
    /// Ring the terminal and show a notification (OSC 9) with this text.
    Notify(String),
    Quit,
}

/// The header's facts.
#[derive(Debug, Clone)]
pub struct Header {
    /// The provider new tasks run on (`offline` when no key is configured).
    pub provider: ProviderKind,
    pub tools: String,
    /// The daily loop this process runs, for its next slot.
    pub schedule: Option<crate::schedule::Schedule>,
}

pub struct App {
    pub keymap: Keymap,
    pub theme: Theme,
    pub header: Header,
    pub rows: Vec<RunRow>,
    pub view: View,
    last_view: View,
    pub overlay: Option<Overlay>,
    pub runs: RunsView,
    pub approvals: ApprovalsView,
    pub detail: DetailView,
    pub form: Form,
    pub clients: ClientsView,
    pub batch: BatchView,
    pub containers: ContainersView,
    pub notice: Option<(String, bool)>,
    pub now_ms: i64,
    pub lagged: u64,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Where the last frame put the list rows, for mouse clicks (written while drawing).
    pub list_area: Cell<Rect>,
    /// A task whose delivery outcome (delivered, or failed) was shown before its approve
    /// command came back: that answer must not cover the outcome.
    delivery_told: Option<String>,
}

impl App {
    pub fn new(
        keymap: Keymap,
        theme: Theme,
        header: Header,
        rows: Vec<RunRow>,
        clients: Vec<String>,
        now_ms: i64,
    ) -> App {
        App {
            keymap,
            theme,
            header,
            rows,
            view: View::Runs,
            last_view: View::Runs,
            overlay: None,
            runs: RunsView::default(),
            approvals: ApprovalsView::default(),
            detail: DetailView::default(),
            form: Form::new(clients),
            clients: ClientsView::default(),
            batch: BatchView::default(),
            containers: ContainersView::default(),
            notice: None,
            now_ms,
            lagged: 0,
            dirty: true,
            list_area: Cell::new(Rect::default()),
            delivery_told: None,
        }
    }

    /// What the console loads once at start: the clients' months (for the header's
    /// warning at 80 % of a cap).
    pub fn start(&mut self) -> Vec<Effect> {
        self.clients.reload().into_iter().collect()
    }

    /// The Runs view's rows: filtered and sorted.
    pub fn visible_runs(&self) -> Vec<&RunRow> {
        self.runs.visible(&self.rows)
    }

    /// Deliverables waiting for a decision, oldest first.
    pub fn waiting(&self) -> Vec<&RunRow> {
        approvals::waiting(&self.rows)
    }

    /// The panes the Run detail offers for the loaded run.
    pub fn panes(&self) -> &'static [&'static str] {
        self.detail.panes()
    }

    /// A request for the visible diff lines that are not highlighted yet, once.
    pub fn highlight_request(&mut self) -> Option<super::highlight::Request> {
        self.detail.highlight_request(&self.theme)
    }

    /// Highlighted lines from the worker; those of another diff are dropped.
    pub fn highlighted(&mut self, reply: super::highlight::Reply) {
        self.dirty |= self.detail.highlighted(reply);
    }

    /// The task the keys of the current view act on.
    fn selected_task(&self) -> Option<String> {
        match self.view {
            View::Approvals => self.approvals.selected(&self.rows),
            View::Detail => self.detail.loaded.as_ref().map(|d| d.task_id.clone()),
            View::Clients => self.clients.selected_task(),
            View::Batch => self.batch.selected_task(),
            View::Containers => None,
            View::Runs | View::NewTask => self.runs.selected(&self.rows),
        }
    }

    /// The keymap contexts in force, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        if let Some(o) = &self.overlay {
            return o.contexts();
        }
        if self.runs.filter_editing {
            return vec![Context::Filter];
        }
        match self.view {
            View::Runs => vec![Context::Runs, Context::Global],
            View::Detail => vec![Context::Detail, Context::Global],
            View::Approvals => vec![Context::Approvals, Context::Global],
            View::NewTask => vec![Context::Form],
            View::Clients => vec![Context::Clients, Context::Global],
            View::Batch => self.batch.contexts(),
            View::Containers => self.containers.contexts(),
        }
    }

    /// The evidence the Approvals view shows: the selected deliverable's detail, and the
    /// other side's when it is one side of a comparison (read again when `refresh_sibling`).
    fn approval_evidence(&mut self, refresh_sibling: bool) -> Vec<Effect> {
        let mut effects = self
            .detail
            .load_if_other(self.approvals.selected(&self.rows));
        effects.extend(self.approvals.load_sibling(&self.rows, refresh_sibling));
        effects
    }

    /// The other side of a comparison, loaded; stale answers are dropped.
    pub fn sibling_loaded(&mut self, request: u64, detail: Result<Detail, String>) {
        match self.approvals.sibling_loaded(request, detail) {
            Ok(taken) => self.dirty |= taken,
            Err(e) => {
                self.notice = Some((e, true));
                self.dirty = true;
            }
        }
    }

    /// A detail the loop loaded; stale answers (an older request) are dropped.
    pub fn detail_loaded(&mut self, request: u64, detail: Result<Detail, String>) {
        if !self.detail.is_current(request) {
            return;
        }
        match detail {
            Ok(d) => {
                d.sync_result(&mut self.rows);
                self.detail.loaded = Some(d)
            }
            Err(e) => self.notice = Some((e, true)),
        }
        self.dirty = true;
    }

    /// Rows read again from the store; the selection stays on the same task.
    pub fn rows_loaded(&mut self, rows: Vec<RunRow>) {
        let selected = self.runs.selected(&self.rows);
        self.rows = rows;
        self.runs.reselect(selected, &self.rows);
        self.dirty = true;
    }

    /// The watcher's newest view of the containers.
    pub fn containers_changed(
        &mut self,
        snapshot: std::sync::Arc<crate::containers::watch::ContainersSnapshot>,
    ) -> Vec<Effect> {
        self.dirty |= self.view == View::Containers;
        self.containers.snapshot_changed(snapshot)
    }

    /// Lines of the followed container's logs.
    pub fn container_logs(&mut self, request: u64, lines: Vec<String>) {
        let taken = self.containers.log_lines(request, lines);
        self.dirty |= taken && self.view == View::Containers;
    }

    pub fn tool_stats_loaded(&mut self, stats: Vec<crate::engine::tools::ToolCallStats>) {
        if self.containers.tools != stats {
            self.containers.tools = stats;
            self.dirty |= self.view == View::Containers;
        }
    }

    /// A failure of background work, shown on the notice line.
    pub fn report_error(&mut self, error: String) {
        self.notice = Some((error, true));
        self.dirty = true;
    }

    /// The outcome of a command the loop sent.
    pub fn command_done(&mut self, what: &Command, result: Result<(), String>) {
        if let Command::BuildImages = what {
            self.containers.build_progress = Some(match &result {
                Ok(()) => "built".into(),
                Err(e) => format!("failed: {e}"),
            });
        }
        let told = self.delivery_told.take();
        if let (Command::Approve { task_id, .. }, Ok(())) = (what, &result)
            && told.as_ref() == Some(task_id)
        {
            // The delivery finished before the approval's answer: its outcome stays.
            self.dirty = true;
            return;
        }
        self.notice = Some(match result {
            Ok(()) => (done_sentence(what), false),
            Err(e) => (e, true),
        });
        self.dirty = true;
    }

    /// Applies what the supervisor said.
    pub fn apply(&mut self, delivery: &Delivery) -> Vec<Effect> {
        let event = match delivery {
            Delivery::Lagged { missed } => {
                // Counts may be stale now: reload what is on screen.
                self.lagged += missed;
                self.notice = Some((
                    format!("the display fell {missed} updates behind and caught up"),
                    false,
                ));
                self.dirty = true;
                let mut effects = vec![Effect::ReloadRows];
                if let Some(d) = self.detail.loaded.take() {
                    effects.push(self.detail.load(d.task_id));
                }
                effects.extend(self.clients.reload());
                return effects;
            }
            Delivery::Event(e) => e.as_ref(),
        };
        if matches!(event, Event::ModelDelta { .. } | Event::ModelDeltas { .. }) {
            for (run_id, text) in event.streamed() {
                // The row's cost meter moves with the text; the Runs view shows it at its
                // next second's tick, so streaming alone never redraws it at frame rate.
                if let Some(row) = self
                    .rows
                    .iter_mut()
                    .find(|r| r.run_id.as_deref() == Some(run_id))
                {
                    row.streamed(text.len());
                }
                if let Some(d) = self.detail.loaded.as_mut().filter(|d| d.run_id == run_id) {
                    d.push_streamed(text);
                    // Only the Detail view shows the output; never clear a redraw already due.
                    self.dirty |= self.view == View::Detail;
                }
            }
            return vec![];
        }
        let mut effects = Vec::new();
        if let Event::TaskCreated { .. } = event {
            let simulated = self.header.provider == ProviderKind::Offline;
            self.rows
                .extend(RunRow::created(event, simulated, self.now_ms));
        }
        match event {
            // The approval's notice said "delivering"; the outcome replaces it.
            Event::Delivered { task_id, url } => {
                self.notice = Some((format!("{task_id} delivered: {url}"), false));
                self.delivery_told = Some(task_id.clone());
            }
            Event::Note { task_id, text, .. } if text.starts_with("delivery failed") => {
                self.notice = Some((format!("{task_id} {text}"), true));
                self.delivery_told = Some(task_id.clone());
            }
            _ => {}
        }
        if let Some(task_id) = event.task_id() {
            if let Some(row) = self.rows.iter_mut().find(|r| r.task_id == task_id) {
                row.apply(event, self.now_ms);
            }
            if let Some(d) = self.detail.loaded.as_mut().filter(|d| d.task_id == task_id) {
                let new_run =
                    matches!(event, Event::RunStarted { run_id, .. } if *run_id != d.run_id);
                d.apply(event, self.now_ms);
                let settled = matches!(
                    event,
                    Event::AwaitingApproval { .. }
                        | Event::RunFinished { .. }
                        | Event::ToolFinished { .. }
                );
                if new_run || settled {
                    // The panes' full results live in the store: read them again.
                    effects.push(self.detail.load(task_id.to_string()));
                }
            }
        }
        if self.view == View::Approvals
            && matches!(
                event,
                Event::AwaitingApproval { .. }
                    | Event::DecisionRecorded { .. }
                    | Event::RunFinished { .. }
            )
        {
            // The other side of a comparison is read again when it reached the gate or ended.
            let sibling = self.approvals.sibling.as_ref().map(|d| d.task_id.as_str());
            let refresh = sibling.is_some() && event.task_id() == sibling;
            self.approvals.clamp(&self.rows);
            effects.extend(self.approval_evidence(refresh));
        }
        effects.extend(self.clients.apply(event, self.view == View::Clients));
        match event {
            Event::ImagesProgress { line } => self.containers.build_progress = Some(line.clone()),
            Event::Notice {
                text,
                terminal: true,
                ..
            } => effects.push(Effect::Notify(text.clone())),
            Event::ToolFinished { .. } if self.view == View::Containers => {
                effects.push(Effect::LoadToolStats)
            }
            _ => {}
        }
        effects.extend(self.batch.apply(event));
        self.dirty = true;
        effects
    }

    pub fn paste(&mut self, text: &str) {
        if dialogs::paste(self, text) {
        } else if self.overlay.is_some() {
            return;
        } else if self.view == View::NewTask {
            // One-line fields take the paste on one line.
            let one_line = self.form.field() == super::form::Field::Title;
            let flat = if one_line {
                text.replace(['\r', '\n'], " ")
            } else {
                text.to_string()
            };
            if let Some(area) = self.form.text_mut() {
                area.insert_str(flat);
            }
        } else if self.runs.filter_editing {
            self.runs.filter.push_str(text.trim());
        } else if !(self.view == View::Batch && self.batch.paste(text)) {
            return;
        }
        self.dirty = true;
    }

    pub fn mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let area = self.list_area.get();
        let step = match m.kind {
            MouseEventKind::ScrollDown => 1,
            MouseEventKind::ScrollUp => -1,
            MouseEventKind::Down(_)
                if m.row >= area.y
                    && m.row < area.y + area.height
                    && m.column >= area.x
                    && m.column < area.x + area.width =>
            {
                let row = (m.row - area.y) as usize;
                self.dirty = true;
                match self.view {
                    View::Runs => self.runs.click(row, &self.rows),
                    View::Approvals => {
                        self.approvals.click(row, &self.rows);
                        return self.approval_evidence(false);
                    }
                    View::Clients => self.clients.click(row),
                    View::Batch => self.batch.click(row),
                    View::Containers => return self.containers.click(row),
                    _ => {}
                }
                return vec![];
            }
            _ => return vec![],
        };
        self.dirty = true;
        match self.view {
            View::Detail => {
                let scroll = if step > 0 {
                    Action::ScrollDown
                } else {
                    Action::ScrollUp
                };
                for _ in 0..3 {
                    self.detail.act(scroll);
                }
                vec![]
            }
            _ => self.act(if step > 0 { Action::Next } else { Action::Prev }),
        }
    }

    pub fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Effect::Quit];
        }
        self.dirty = true;
        let action = self.keymap.action(&self.contexts(), &key);
        if let Some(a) = action {
            return self.act(a);
        }
        // Keys the table does not bind are text where text is being written.
        if self.overlay.is_some() {
            dialogs::key(self, key);
        } else if self.runs.filter_editing {
            self.runs.filter_key(key);
        } else if self.view == View::NewTask {
            self.form.key(key);
        } else if self.view == View::Batch {
            self.batch.key(key);
        } else if self.view == View::Containers && self.containers.searching {
            self.containers.search_key(key);
        }
        vec![]
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        let effects = self.route(action);
        // A new approval of a task: an outcome told before belongs to the last attempt.
        if effects.iter().any(|e| {
            matches!(e, Effect::Send(Command::Approve { task_id, .. })
                if self.delivery_told.as_ref() == Some(task_id))
        }) {
            self.delivery_told = None;
        }
        effects
    }

    fn route(&mut self, action: Action) -> Vec<Effect> {
        let help_open = matches!(self.overlay, Some(Overlay::Help));
        // Help stays open over the global keys; every other dialog has the keys to itself.
        if self.overlay.is_some() && (!help_open || action == Action::Cancel) {
            return dialogs::act(self, action);
        }
        if self.runs.filter_editing {
            self.runs.filter_act(action);
            return vec![];
        }
        if self.view == View::Containers && self.containers.searching {
            self.containers.search_act(action);
            return vec![];
        }
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::ViewRuns => self.view = View::Runs,
            Action::ViewApprovals => {
                self.view = View::Approvals;
                self.approvals.clamp(&self.rows);
                return self.approval_evidence(false);
            }
            Action::ViewClients => {
                self.view = View::Clients;
                return self.clients.reload().into_iter().collect();
            }
            Action::ViewBatch => {
                self.view = View::Batch;
                return self.batch.entered();
            }
            Action::ViewContainers => {
                self.view = View::Containers;
                self.containers.clients = self.form.clients.clone();
                return self.containers.entered();
            }
            Action::NewTask => {
                self.view = View::NewTask;
                let clients = std::mem::take(&mut self.form.clients);
                self.form = Form::new(clients);
            }
            Action::Open => {
                if let Some(task_id) = self.selected_task() {
                    self.last_view = self.view;
                    self.view = View::Detail;
                    return self.detail.open(task_id);
                }
            }
            Action::Back if self.view == View::Detail => self.view = self.last_view,
            Action::CancelTask => {
                if let Some(task_id) = self.selected_task() {
                    return vec![Effect::Send(Command::Cancel { task_id })];
                }
            }
            Action::Resume => {
                let row = self
                    .selected_task()
                    .and_then(|id| self.rows.iter().find(|r| r.task_id == id).cloned());
                if let Some(r) = row {
                    let task_id = r.task_id;
                    return vec![Effect::Send(match r.status {
                        TaskStatus::Failed | TaskStatus::Rejected | TaskStatus::Cancelled => {
                            Command::Retry { task_id }
                        }
                        _ => Command::Resume { task_id },
                    })];
                }
            }
            Action::Approve | Action::Revise | Action::Reject => {
                if let Some(task_id) = self.selected_task() {
                    return dialogs::decide(self, action, task_id);
                }
            }
            action => return self.view_act(action),
        }
        vec![]
    }

    /// An action that belongs to the current view alone.
    fn view_act(&mut self, action: Action) -> Vec<Effect> {
        match self.view {
            View::Runs => {
                self.runs.act(action, &self.rows);
            }
            View::Approvals => {
                if self.approvals.act(action, &self.rows) {
                    return self.approval_evidence(false);
                }
            }
            View::Detail => {
                self.detail.act(action);
            }
            View::NewTask => match self.form.act(action, self.header.provider) {
                Some(FormEnd::Launch(task)) => {
                    self.view = View::Runs;
                    self.runs.sel = 0;
                    return vec![Effect::Send(Command::StartTask { task: *task })];
                }
                Some(FormEnd::Compare(task, agents)) => {
                    self.view = View::Runs;
                    self.runs.sel = 0;
                    return vec![Effect::Send(Command::StartCompare { task, agents })];
                }
                Some(FormEnd::Cancelled) => self.view = View::Runs,
                None => {}
            },
            View::Clients => {
                let out = self.clients.act(action);
                if out.dialog.is_some() {
                    self.overlay = out.dialog;
                }
                if let Some(n) = out.notice {
                    self.notice = Some((n, true));
                }
                return out.effects;
            }
            View::Containers => {
                let out = self.containers.act(action);
                if out.dialog.is_some() {
                    self.overlay = out.dialog;
                }
                return out.effects;
            }
            View::Batch if action == Action::Cancel => self.view = View::Runs,
            View::Batch => {
                let (effects, dialog) = self.batch.act(action, self.header.provider);
                if dialog.is_some() {
                    self.overlay = dialog;
                }
                return effects;
            }
        }
        vec![]
    }
}

/// The notice after a command succeeded.
fn done_sentence(what: &Command) -> String {
    match what {
        Command::Approve { task_id, .. } => format!("{task_id} approved; delivering"),
        Command::Revise { task_id, .. } => format!("{task_id} sent back for revision"),
        Command::Reject { task_id, .. } => format!("{task_id} rejected"),
        Command::StartTask { task } => format!("started: {}", task.title),
        Command::StartCompare { task, agents } => {
            format!("comparing {}: {}", agents.join(" and "), task.title)
        }
        Command::QueueTask { task } => format!("queued for the daily loop: {}", task.title),
        Command::Cancel { task_id } => format!("{task_id} cancelled"),
        Command::Resume { task_id } | Command::Retry { task_id } => {
            format!("{task_id} working again")
        }
        Command::UpsertClient { id, .. } => format!("client {id} saved"),
        Command::SetClientCap {
            client_id,
            monthly_budget_micros,
            ..
        } => format!(
            "monthly cap of {client_id} set to {}",
            crate::money::format_usd(*monthly_budget_micros)
        ),
        Command::SetTaskBudget {
            task_id,
            budget_micros,
            ..
        } => format!(
            "budget of {task_id} set to {}",
            crate::money::format_usd(*budget_micros)
        ),
        Command::SetClientRetainer { client_id, .. } => format!("retainer of {client_id} set"),
        Command::StartBatch { batch } => format!("batch launched: {}", batch.source),
        Command::RetryBatch { batch_id } => format!("failed apps of {batch_id} retried"),
        Command::CancelBatch { batch_id } => format!("{batch_id} cancelled"),
        Command::Container { name, verb } => format!("{name} {}", verb.done()),
        Command::StartServer { server, client } => match client {
            Some(c) => format!("{server} for {c} started"),
            None => format!("{server} started"),
        },
        Command::BuildImages => "images built".into(),
    }
}
