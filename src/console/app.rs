//! The console as a state machine: terminal input and supervisor events in, effects out
//! (commands for the supervisor, loads for the store, quitting). No IO happens here and
//! nothing here draws; `views` draw from this state.

use super::form::Form;
use super::keymap::{Action, Context, Keymap};
use super::model::{Detail, RunRow};
use super::theme::Theme;
use super::views::critical_review::{self, Approval, CriticalReview, ReviewEnd};
use crate::config::ProviderKind;
use crate::domain::TaskStatus;
use crate::supervisor::{Command, Delivery, Event};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use ratatui_textarea::TextArea;
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Runs,
    Detail,
    Approvals,
    NewTask,
}

/// The panes of the Run detail.
pub const PANES: [&str; 6] = ["Output", "Diff", "Lint", "Tests", "Exec", "Timeline"];
/// The panes of a run on a client's repository: its evidence first; its checks are in it.
pub const REPO_PANES: [&str; 4] = ["Evidence", "Diff", "Output", "Timeline"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteFor {
    Revise,
    Reject,
    /// Approving despite a secret found in the diff (after a critical review, if done).
    SecretOverride {
        critical_reviewed: bool,
    },
}

pub enum Overlay {
    Help,
    Note {
        purpose: NoteFor,
        task_id: String,
        text: Box<TextArea<'static>>,
    },
    Confirm {
        task_id: String,
        note: String,
    },
    /// The full diff of a risky deliverable, read to its end before approving.
    Review(Box<CriticalReview>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    State,
    Cost,
    Client,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::State => "state",
            Sort::Cost => "cost",
            Sort::Client => "client",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Newest => Sort::State,
            Sort::State => Sort::Cost,
            Sort::Cost => Sort::Client,
            Sort::Client => Sort::Newest,
        }
    }
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    LoadDetail {
        task_id: String,
        request: u64,
    },
    /// Read the rows again from the store (after missing events).
    ReloadRows,
    Quit,
}

/// The header's facts.
#[derive(Debug, Clone)]
pub struct Header {
    /// The provider new tasks run on (`offline` when no key is configured).
    pub provider: ProviderKind,
    pub tools: String,
}

pub struct App {
    pub keymap: Keymap,
    pub theme: Theme,
    pub header: Header,
    pub rows: Vec<RunRow>,
    pub view: View,
    last_view: View,
    pub overlay: Option<Overlay>,
    pub runs_sel: usize,
    pub approvals_sel: usize,
    pub sort: Sort,
    pub filter: String,
    pub filter_editing: bool,
    pub detail: Option<Detail>,
    detail_request: u64,
    pub pane: usize,
    /// Lines scrolled up from the bottom of the pane; 0 follows new output.
    pub scroll: usize,
    pub form: Form,
    pub notice: Option<(String, bool)>,
    pub now_ms: i64,
    pub lagged: u64,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Where the last frame put the list rows, for mouse clicks (written while drawing).
    pub list_area: Cell<Rect>,
    /// Diff lines on screen in the last frame (written while drawing).
    pub diff_view: Cell<Option<(usize, usize)>>,
    /// Highlighted diff lines of the current detail, by diff index.
    pub highlights: std::collections::HashMap<usize, super::highlight::Spans>,
    highlight_key: u64,
    highlight_asked: Option<(u64, usize, usize)>,
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
            runs_sel: 0,
            approvals_sel: 0,
            sort: Sort::Newest,
            filter: String::new(),
            filter_editing: false,
            detail: None,
            detail_request: 0,
            pane: 0,
            scroll: 0,
            form: Form::new(clients),
            notice: None,
            now_ms,
            lagged: 0,
            dirty: true,
            list_area: Cell::new(Rect::default()),
            diff_view: Cell::new(None),
            highlights: std::collections::HashMap::new(),
            highlight_key: 0,
            highlight_asked: None,
        }
    }

    /// Which diff the cache is for: the run and the diff's size.
    fn diff_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if let Some(d) = &self.detail {
            d.run_id.hash(&mut h);
            d.diff.len().hash(&mut h);
            d.diff.last().hash(&mut h);
        }
        h.finish()
    }

    /// A request for the visible diff lines that are not highlighted yet, once.
    pub fn highlight_request(&mut self) -> Option<super::highlight::Request> {
        let (start, end) = self.diff_view.get()?;
        // NO_COLOR: the plain diff it is.
        self.theme.color(super::theme::Role::Text)?;
        let key = self.diff_key();
        if key != self.highlight_key {
            self.highlights.clear();
            self.highlight_key = key;
        }
        let d = self.detail.as_ref()?;
        let missing = (start..end.min(d.diff.len())).any(|i| {
            d.diff[i].starts_with('+')
                && !d.diff[i].starts_with("+++")
                && !self.highlights.contains_key(&i)
        });
        if !missing || self.highlight_asked == Some((key, start, end)) {
            return None;
        }
        self.highlight_asked = Some((key, start, end));
        let sections = super::highlight::sections(&d.diff, start, end);
        Some(super::highlight::Request {
            key,
            sections,
            dark: self.theme.name != "light",
        })
    }

    /// Highlighted lines from the worker; those of another diff are dropped.
    pub fn highlighted(&mut self, reply: super::highlight::Reply) {
        if reply.key != self.highlight_key {
            return;
        }
        self.highlights.extend(reply.lines);
        self.dirty = true;
    }

    /// The Runs view's rows: filtered and sorted.
    pub fn visible_runs(&self) -> Vec<&RunRow> {
        let f = self.filter.to_lowercase();
        let mut v: Vec<&RunRow> = self
            .rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.title.to_lowercase().contains(&f)
                    || r.client_id.to_lowercase().contains(&f)
                    || r.task_id.to_lowercase().contains(&f)
                    || r.state.contains(&f)
            })
            .collect();
        match self.sort {
            Sort::Newest => v.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then(b.task_id.cmp(&a.task_id))
            }),
            Sort::State => {
                v.sort_by(|a, b| a.state.cmp(&b.state).then(b.created_at.cmp(&a.created_at)))
            }
            Sort::Cost => v.sort_by_key(|r| std::cmp::Reverse(r.cost)),
            Sort::Client => v.sort_by(|a, b| {
                a.client_id
                    .cmp(&b.client_id)
                    .then(b.created_at.cmp(&a.created_at))
            }),
        }
        v
    }

    /// Deliverables waiting for a decision, oldest first.
    pub fn waiting(&self) -> Vec<&RunRow> {
        let mut v: Vec<&RunRow> = self
            .rows
            .iter()
            .filter(|r| r.status == TaskStatus::AwaitingApproval)
            .collect();
        v.sort_by_key(|r| (r.waiting_since.unwrap_or(i64::MAX), r.task_id.clone()));
        v
    }

    fn selected_task(&self) -> Option<String> {
        match self.view {
            View::Approvals => self
                .waiting()
                .get(self.approvals_sel)
                .map(|r| r.task_id.clone()),
            View::Detail => self.detail.as_ref().map(|d| d.task_id.clone()),
            _ => self
                .visible_runs()
                .get(self.runs_sel)
                .map(|r| r.task_id.clone()),
        }
    }

    /// The keymap contexts in force, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        match &self.overlay {
            Some(Overlay::Help) => return vec![Context::Help, Context::Global],
            Some(Overlay::Note { .. }) => return vec![Context::Note],
            Some(Overlay::Confirm { .. }) => return vec![Context::Confirm],
            Some(Overlay::Review(_)) => return vec![Context::Review],
            None => {}
        }
        if self.filter_editing {
            return vec![Context::Filter];
        }
        match self.view {
            View::Runs => vec![Context::Runs, Context::Global],
            View::Detail => vec![Context::Detail, Context::Global],
            View::Approvals => vec![Context::Approvals, Context::Global],
            View::NewTask => vec![Context::Form],
        }
    }

    fn load_selected(&mut self) -> Vec<Effect> {
        match self.selected_task() {
            Some(task_id) if self.detail.as_ref().is_none_or(|d| d.task_id != task_id) => {
                self.detail_request += 1;
                vec![Effect::LoadDetail {
                    task_id,
                    request: self.detail_request,
                }]
            }
            _ => vec![],
        }
    }

    /// A detail the loop loaded; stale answers (an older request) are dropped.
    pub fn detail_loaded(&mut self, request: u64, detail: Result<Detail, String>) {
        if request != self.detail_request {
            return;
        }
        match detail {
            Ok(d) => {
                d.sync_result(&mut self.rows);
                self.detail = Some(d)
            }
            Err(e) => self.notice = Some((e, true)),
        }
        self.dirty = true;
    }

    /// Rows read again from the store; the selection stays on the same task.
    pub fn rows_loaded(&mut self, rows: Vec<RunRow>) {
        let selected = self
            .visible_runs()
            .get(self.runs_sel)
            .map(|r| r.task_id.clone());
        self.rows = rows;
        if let Some(id) = selected {
            self.runs_sel = self
                .visible_runs()
                .iter()
                .position(|r| r.task_id == id)
                .unwrap_or(0);
        }
        self.dirty = true;
    }

    /// A failure of background work, shown on the notice line.
    pub fn report_error(&mut self, error: String) {
        self.notice = Some((error, true));
        self.dirty = true;
    }

    /// The outcome of a command the loop sent.
    pub fn command_done(&mut self, what: &Command, result: Result<(), String>) {
        self.notice = Some(match result {
            Ok(()) => (
                match what {
                    Command::Approve { task_id, .. } => format!("{task_id} approved; delivering"),
                    Command::Revise { task_id, .. } => format!("{task_id} sent back for revision"),
                    Command::Reject { task_id, .. } => format!("{task_id} rejected"),
                    Command::StartTask { task } => format!("started: {}", task.title),
                    Command::Cancel { task_id } => format!("{task_id} cancelled"),
                    Command::Resume { task_id } | Command::Retry { task_id } => {
                        format!("{task_id} working again")
                    }
                    Command::UpsertClient { id, .. } => format!("client {id} saved"),
                    Command::SetClientCap { client_id, .. } => {
                        format!("monthly cap of {client_id} set")
                    }
                    Command::SetTaskBudget { task_id, .. } => format!("budget of {task_id} set"),
                    Command::SetClientRetainer { client_id, .. } => {
                        format!("retainer of {client_id} set")
                    }
                    Command::StartBatch { batch } => format!("batch launched: {}", batch.source),
                    Command::RetryBatch { batch_id } => {
                        format!("failed apps of {batch_id} retried")
                    }
                    Command::CancelBatch { batch_id } => format!("{batch_id} cancelled"),
                },
                false,
            ),
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
                if let Some(d) = self.detail.take() {
                    self.detail_request += 1;
                    effects.push(Effect::LoadDetail {
                        task_id: d.task_id,
                        request: self.detail_request,
                    });
                }
                return effects;
            }
            Delivery::Event(e) => e.as_ref(),
        };
        if let Event::ModelDelta { run_id, .. } = event {
            if let Some(d) = self.detail.as_mut().filter(|d| &d.run_id == run_id) {
                d.apply(event, self.now_ms);
                // Only the Detail view shows the output; never clear a redraw already due.
                self.dirty |= self.view == View::Detail;
            }
            return vec![];
        }
        let mut effects = Vec::new();
        if let Event::TaskCreated {
            task_id,
            client_id,
            title,
            ..
        } = event
        {
            self.rows.push(RunRow::created(
                task_id,
                client_id,
                title,
                self.header.provider == ProviderKind::Offline,
                self.now_ms,
            ));
        }
        match event {
            // The approval's notice said "delivering"; the outcome replaces it.
            Event::Delivered { task_id, url } => {
                self.notice = Some((format!("{task_id} delivered: {url}"), false));
            }
            Event::Note { task_id, text, .. } if text.starts_with("delivery failed") => {
                self.notice = Some((format!("{task_id} {text}"), true));
            }
            _ => {}
        }
        if let Some(task_id) = event.task_id() {
            if let Some(row) = self.rows.iter_mut().find(|r| r.task_id == task_id) {
                row.apply(event, self.now_ms);
            }
            if let Some(d) = self.detail.as_mut().filter(|d| d.task_id == task_id) {
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
                    self.detail_request += 1;
                    effects.push(Effect::LoadDetail {
                        task_id: task_id.to_string(),
                        request: self.detail_request,
                    });
                }
            }
        }
        if self.view == View::Approvals
            && matches!(
                event,
                Event::AwaitingApproval { .. } | Event::DecisionRecorded { .. }
            )
        {
            self.approvals_sel = self
                .approvals_sel
                .min(self.waiting().len().saturating_sub(1));
            effects.extend(self.load_selected());
        }
        self.dirty = true;
        effects
    }

    pub fn paste(&mut self, text: &str) {
        match (&mut self.overlay, self.view) {
            (Some(Overlay::Note { text: area, .. }), _) => {
                area.insert_str(text);
            }
            (None, View::NewTask) => {
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
            }
            (None, _) if self.filter_editing => self.filter.push_str(text.trim()),
            _ => return,
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
                match self.view {
                    View::Runs => {
                        self.runs_sel = row.min(self.visible_runs().len().saturating_sub(1))
                    }
                    View::Approvals => {
                        self.approvals_sel = row.min(self.waiting().len().saturating_sub(1));
                        self.dirty = true;
                        return self.load_selected();
                    }
                    _ => {}
                }
                self.dirty = true;
                return vec![];
            }
            _ => return vec![],
        };
        self.dirty = true;
        match self.view {
            View::Detail => {
                self.scroll = if step > 0 {
                    self.scroll.saturating_sub(3)
                } else {
                    self.scroll + 3
                };
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
        if let Some(Overlay::Note { text, .. }) = &mut self.overlay {
            text.input(key);
        } else if self.filter_editing {
            match key.code {
                KeyCode::Char(c) => self.filter.push(c),
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                _ => {}
            }
            self.runs_sel = 0;
        } else if self.view == View::NewTask {
            if self.form.field().is_choice() {
                match key.code {
                    KeyCode::Left => self.form.choose(-1),
                    KeyCode::Right | KeyCode::Char(' ') => self.form.choose(1),
                    _ => {}
                }
            } else {
                // Enter makes a new line only in the description.
                let multiline = self.form.field() == super::form::Field::Description;
                if let Some(area) = self.form.text_mut()
                    && (key.code != KeyCode::Enter || multiline)
                {
                    area.input(key);
                }
            }
        }
        vec![]
    }

    /// The panes the Run detail offers for the loaded run.
    pub fn panes(&self) -> &'static [&'static str] {
        match self.detail.as_ref().and_then(|d| d.repo.as_ref()) {
            Some(_) => &REPO_PANES,
            None => &PANES,
        }
    }

    /// The next step of an approval: send it, or open the dialog it needs first.
    fn approval(&mut self, next: Approval) -> Vec<Effect> {
        match next {
            Approval::Send(command) => return vec![Effect::Send(command)],
            Approval::Open(dialog) => {
                self.overlay = Some(critical_review::open(dialog, self.detail.as_ref()))
            }
        }
        vec![]
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        if let Some(Overlay::Review(review)) = &mut self.overlay {
            match review.act(action) {
                Some(ReviewEnd::Cancelled) => self.overlay = None,
                Some(ReviewEnd::Confirmed(next)) => {
                    self.overlay = None;
                    return self.approval(*next);
                }
                Some(ReviewEnd::NotYet(why)) => self.notice = Some((why, true)),
                None => {}
            }
            return vec![];
        }
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::ViewRuns => self.view = View::Runs,
            Action::ViewApprovals => {
                self.view = View::Approvals;
                self.approvals_sel = self
                    .approvals_sel
                    .min(self.waiting().len().saturating_sub(1));
                return self.load_selected();
            }
            Action::NewTask => {
                self.view = View::NewTask;
                let clients = std::mem::take(&mut self.form.clients);
                self.form = Form::new(clients);
            }
            Action::Next | Action::Prev => {
                let step: isize = if action == Action::Next { 1 } else { -1 };
                let approvals = self.view == View::Approvals;
                let len = if approvals {
                    self.waiting().len()
                } else {
                    self.visible_runs().len()
                };
                let sel = if approvals {
                    &mut self.approvals_sel
                } else {
                    &mut self.runs_sel
                };
                *sel = (*sel as isize + step).clamp(0, len.saturating_sub(1) as isize) as usize;
                if self.view == View::Approvals {
                    return self.load_selected();
                }
            }
            Action::Open => {
                if let Some(task_id) = self.selected_task() {
                    self.last_view = self.view;
                    self.view = View::Detail;
                    self.pane = 0;
                    self.scroll = 0;
                    if self.detail.as_ref().is_none_or(|d| d.task_id != task_id) {
                        self.detail = None;
                        self.detail_request += 1;
                        return vec![Effect::LoadDetail {
                            task_id,
                            request: self.detail_request,
                        }];
                    }
                }
            }
            Action::Back => self.view = self.last_view,
            Action::Sort => self.sort = self.sort.next(),
            Action::Filter => self.filter_editing = true,
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
            Action::NextPane => {
                self.pane = (self.pane + 1) % self.panes().len();
                self.scroll = 0;
            }
            Action::PrevPane => {
                let n = self.panes().len();
                self.pane = (self.pane + n - 1) % n;
                self.scroll = 0;
            }
            Action::ScrollUp => self.scroll += 1,
            Action::ScrollDown => self.scroll = self.scroll.saturating_sub(1),
            Action::PageUp => self.scroll += 20,
            Action::PageDown => self.scroll = self.scroll.saturating_sub(20),
            Action::Top => self.scroll = usize::MAX / 2,
            Action::Bottom => self.scroll = 0,
            Action::Approve => {
                if let Some(task_id) = self.selected_task() {
                    return self.approval(critical_review::approve(self.detail.as_ref(), task_id));
                }
            }
            Action::Revise | Action::Reject => {
                if let Some(task_id) = self.selected_task() {
                    let purpose = if action == Action::Revise {
                        NoteFor::Revise
                    } else {
                        NoteFor::Reject
                    };
                    let mut text = TextArea::default();
                    text.set_placeholder_text(match purpose {
                        NoteFor::Revise => "what should change? (the agent gets this note)",
                        NoteFor::Reject => "why is it rejected?",
                        NoteFor::SecretOverride { .. } => "why is it safe to ship?",
                    });
                    self.overlay = Some(Overlay::Note {
                        purpose,
                        task_id,
                        text: Box::new(text),
                    });
                }
            }
            Action::NextField => self.form.next(1),
            Action::PrevField => self.form.next(-1),
            Action::Submit => return self.submit(),
            Action::Cancel => {
                if self.overlay.take().is_none() {
                    if self.filter_editing {
                        self.filter_editing = false;
                        self.filter.clear();
                    } else if self.view == View::NewTask {
                        self.view = View::Runs;
                    }
                }
            }
            Action::Confirm => {
                if let Some(Overlay::Confirm { task_id, note }) = self.overlay.take() {
                    return vec![Effect::Send(Command::Reject { task_id, note })];
                }
            }
        }
        vec![]
    }

    fn submit(&mut self) -> Vec<Effect> {
        if self.filter_editing {
            self.filter_editing = false;
            return vec![];
        }
        match self.overlay.take() {
            Some(Overlay::Note {
                purpose,
                task_id,
                text,
            }) => {
                let note = text.lines().join("\n").trim().to_string();
                if note.is_empty() {
                    self.notice =
                        Some(("write a note first (what to change, or why)".into(), true));
                    self.overlay = Some(Overlay::Note {
                        purpose,
                        task_id,
                        text,
                    });
                    return vec![];
                }
                match purpose {
                    NoteFor::Revise => vec![Effect::Send(Command::Revise { task_id, note })],
                    NoteFor::SecretOverride { critical_reviewed } => {
                        vec![Effect::Send(Command::Approve {
                            task_id,
                            review: crate::supervisor::ApprovalReview {
                                critical_reviewed,
                                secret_override: Some(note),
                            },
                        })]
                    }
                    NoteFor::Reject => {
                        // Rejecting ends the task: ask once more.
                        self.overlay = Some(Overlay::Confirm { task_id, note });
                        vec![]
                    }
                }
            }
            Some(other) => {
                self.overlay = Some(other);
                vec![]
            }
            None if self.view == View::NewTask => match self.form.task(self.header.provider) {
                Ok(task) => {
                    self.view = View::Runs;
                    self.runs_sel = 0;
                    vec![Effect::Send(Command::StartTask { task })]
                }
                Err(e) => {
                    self.form.error = Some(e);
                    vec![]
                }
            },
            None => vec![],
        }
    }
}
