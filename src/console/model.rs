//! What the console shows, as data: a row per task for the Runs view, and the detail of
//! one run. Loading touches the store and happens off the UI loop; applying supervisor
//! events is pure.

use super::ring::LineRing;
use crate::domain::TaskStatus;
use crate::engine::fsm::repo::RepoWork;
use crate::engine::fsm::{Agent, AgentState};
use crate::engine::tools::{ToolOutcome, ToolReply};
use crate::money::Micros;
use crate::store::{Store, TaskRecord};
use crate::supervisor::Event;

/// Model output kept per run: 4 MiB, newest lines.
pub const OUTPUT_CAP: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub task_id: String,
    pub run_id: Option<String>,
    pub client_id: String,
    pub title: String,
    pub agent: String,
    /// The comparison this task is one side of (its first task's id).
    pub compare_group: Option<String>,
    pub status: TaskStatus,
    /// The agent state while it works (`coding`), else the status.
    pub state: String,
    pub step: String,
    pub iteration: i64,
    pub quality: Option<f64>,
    pub tokens: i64,
    pub cost: Micros,
    /// Some of `cost` is an estimate: a provider reported no usage for a call.
    pub cost_estimated: bool,
    pub budget: Micros,
    pub simulated: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// When it reached the approval gate, for oldest-first.
    pub waiting_since: Option<i64>,
    pub reason: Option<String>,
    /// How a run on a client's repository ended (`SUCCESS`, `SOFT_FAIL`, `HARD_FAIL`);
    /// none for greenfield runs.
    pub result: Option<String>,
    /// The model call streaming now, priced from its text until the ledger settles it.
    pub streaming: Option<StreamingCost>,
}

/// The live estimate of a model call not yet settled: the prompt from its length, the
/// reply from the bytes streamed so far (one token per four bytes) at the output price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamingCost {
    pub prompt_micros: Micros,
    pub output_price_micros: Micros,
    pub streamed_bytes: u64,
}

impl StreamingCost {
    pub fn micros(&self) -> Micros {
        let tokens = self.streamed_bytes.div_ceil(4) as i128;
        let output = (tokens * self.output_price_micros as i128 + 999_999) / 1_000_000;
        self.prompt_micros
            .saturating_add(output.min(i64::MAX as i128) as Micros)
    }
}

impl RunRow {
    pub fn from_record(t: &TaskRecord, run: Option<&(String, String, i64)>) -> RunRow {
        let working = t.status == TaskStatus::Running || t.status == TaskStatus::Revising;
        RunRow {
            task_id: t.id.clone(),
            run_id: run.map(|r| r.0.clone()),
            client_id: t.client_id.clone(),
            title: t.title.clone(),
            agent: t.agent_kind.clone(),
            compare_group: t.compare_group.clone(),
            status: t.status,
            state: if working {
                run.map(|r| r.1.clone())
                    .unwrap_or_else(|| t.status.to_string())
            } else {
                t.status.to_string()
            },
            step: String::new(),
            iteration: t.iterations,
            quality: t.quality_score,
            tokens: t.tokens_used,
            cost: t.cost_micros,
            cost_estimated: t.cost_estimated,
            budget: t.budget_micros,
            simulated: t.model_mode == "offline",
            created_at: t.created_at,
            started_at: run.map(|r| r.2),
            ended_at: t.completed_at,
            waiting_since: (t.status == TaskStatus::AwaitingApproval).then_some(t.updated_at),
            reason: t.status_reason.clone(),
            result: t.result_status.clone(),
            streaming: None,
        }
    }

    /// The row of a task just created (a `TaskCreated` event), before its first run.
    pub fn created(event: &Event, simulated: bool, now_ms: i64) -> Option<RunRow> {
        let Event::TaskCreated {
            task_id,
            client_id,
            title,
            agent_kind,
            compare_group,
            ..
        } = event
        else {
            return None;
        };
        Some(RunRow {
            task_id: task_id.to_string(),
            run_id: None,
            client_id: client_id.to_string(),
            title: title.to_string(),
            agent: agent_kind.clone(),
            compare_group: compare_group.clone(),
            status: TaskStatus::Pending,
            state: "pending".into(),
            step: String::new(),
            iteration: 0,
            quality: None,
            tokens: 0,
            cost: 0,
            cost_estimated: false,
            budget: 0,
            simulated,
            created_at: now_ms,
            started_at: None,
            ended_at: None,
            waiting_since: None,
            reason: None,
            result: None,
            streaming: None,
        })
    }

    /// Seconds of work: from its start until it ended, reached the approval gate, or now.
    pub fn elapsed_secs(&self, now_ms: i64) -> Option<i64> {
        let start = self.started_at?;
        let end = self.ended_at.or(self.waiting_since).unwrap_or(now_ms);
        Some((end - start).max(0) / 1000)
    }

    /// The cost to show: what the ledger settled plus the estimate of a call streaming now,
    /// and whether any of it is an estimate.
    pub fn shown_cost(&self) -> (Micros, bool) {
        match self.streaming {
            Some(s) => (self.cost.saturating_add(s.micros()), true),
            None => (self.cost, self.cost_estimated),
        }
    }

    /// Streamed text of this row's run: the live estimate grows with it.
    pub fn streamed(&mut self, bytes: usize) {
        if let Some(s) = self.streaming.as_mut() {
            s.streamed_bytes += bytes as u64;
        }
    }

    /// The state as the Runs view shows it, short enough for 80 columns.
    pub fn state_label(&self, wide: bool) -> String {
        let state = match self.state.as_str() {
            "awaiting_approval" => "approval",
            s => s,
        };
        if wide
            && !self.step.is_empty()
            && !self.status.is_terminal()
            && self.status != TaskStatus::AwaitingApproval
        {
            format!("{state} · {}", self.step)
        } else if let Some(result) = self.result.as_deref().filter(|_| wide) {
            // The column is 20 wide: the short separator keeps `delivered SOFT_FAIL` whole.
            let sep = if state.len() + result.len() + 3 > 20 {
                " "
            } else {
                " · "
            };
            format!("{state}{sep}{result}")
        } else {
            state.to_string()
        }
    }

    /// Applies a supervisor event about this row's task.
    pub fn apply(&mut self, event: &Event, now_ms: i64) {
        match event {
            Event::RunStarted { run_id, .. } => {
                self.run_id = Some(run_id.clone());
                self.started_at.get_or_insert(now_ms);
                self.ended_at = None;
                self.status = TaskStatus::Running;
                self.state = "running".into();
                self.reason = None;
            }
            Event::StateChanged {
                state,
                step,
                iteration,
                ..
            } => {
                self.state = state.as_str().into();
                self.step = step.clone();
                self.iteration = *iteration as i64;
                self.status = match state {
                    AgentState::AwaitingApproval => TaskStatus::AwaitingApproval,
                    AgentState::Delivering => TaskStatus::Delivering,
                    AgentState::Delivered => TaskStatus::Delivered,
                    AgentState::Paused => TaskStatus::Paused,
                    AgentState::Failed => TaskStatus::Failed,
                    AgentState::Rejected => TaskStatus::Rejected,
                    AgentState::Cancelled => TaskStatus::Cancelled,
                    AgentState::Pending => TaskStatus::Pending,
                    _ => self.status.max_running(),
                };
            }
            Event::ModelStarted {
                prompt_estimate_micros,
                output_price_micros,
                ..
            } => {
                self.streaming = Some(StreamingCost {
                    prompt_micros: *prompt_estimate_micros,
                    output_price_micros: *output_price_micros,
                    streamed_bytes: 0,
                });
            }
            Event::CostRecorded {
                usage,
                estimated,
                task_total_micros,
                ..
            } => {
                // The settled cost replaces the estimate.
                self.streaming = None;
                self.tokens += usage.total() as i64;
                self.cost = *task_total_micros;
                self.cost_estimated |= *estimated;
            }
            Event::AwaitingApproval { quality_score, .. } => {
                self.status = TaskStatus::AwaitingApproval;
                self.state = "awaiting_approval".into();
                self.quality = *quality_score;
                self.waiting_since = Some(now_ms);
            }
            Event::Paused { reason, .. } => {
                self.status = TaskStatus::Paused;
                self.state = "paused".into();
                self.reason = Some(reason.clone());
            }
            Event::RunFinished { status, reason, .. } => {
                if let Some(s) = TaskStatus::parse(status) {
                    self.status = s;
                    self.state = status.clone();
                }
                self.reason = reason.clone();
                self.ended_at = Some(now_ms);
                self.waiting_since = None;
                // A call cut off by a stop is settled before; nothing streams after the end.
                self.streaming = None;
            }
            Event::DecisionRecorded { .. } => self.waiting_since = None,
            _ => {}
        }
    }
}

impl TaskStatus {
    /// Running, or revising when it already was.
    fn max_running(self) -> TaskStatus {
        if self == TaskStatus::Revising {
            self
        } else {
            TaskStatus::Running
        }
    }
}

/// One line of a run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: i64,
    pub text: String,
}

/// A tool step's latest result as panes show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepView {
    pub label: String,
    pub lines: Vec<String>,
}

/// Everything the Run detail and the Approvals evidence show about one run.
#[derive(Debug, Clone)]
pub struct Detail {
    pub task_id: String,
    pub run_id: String,
    pub timeline: Vec<TimelineEntry>,
    pub output: LineRing,
    /// Unified diff of the deliverable (every file added).
    pub diff: Vec<String>,
    pub lint: StepView,
    pub tests: StepView,
    pub exec: StepView,
    pub skipped: Vec<String>,
    pub issues: Vec<String>,
    pub budget: Micros,
    pub switch_percent: u8,
    pub client_spent: Micros,
    pub client_cap: Micros,
    /// Whether any of the client's cost rows this month is an estimate, so the month's
    /// spend is one too.
    pub client_month_estimated: bool,
    /// The evidence of a run on a client's repository (none for greenfield runs): base and
    /// branch, checks before and after, criteria, risk, result, the pull request.
    pub repo: Option<RepoWork>,
    /// Where the deliverable went (the pull request for a repository run), once delivered.
    pub deliverable_url: Option<String>,
    /// What a third-party agent's own cost figure differs from ecca's prices by (the sum of
    /// its difference rows): none when it stated no figure.
    pub reported_difference: Option<Micros>,
}

fn step_view(payload: &serde_json::Value) -> StepView {
    let summary = payload["summary"].as_str().unwrap_or("").to_string();
    let outcome: Option<ToolOutcome> = serde_json::from_value(payload["result"].clone()).ok();
    let mut lines = Vec::new();
    match outcome {
        Some(ToolOutcome::Done {
            reply: ToolReply::Lint(r),
        }) => {
            if r.diagnostics.is_empty() {
                lines.push("no problems".into());
            }
            for d in r.diagnostics {
                lines.push(format!(
                    "{}:{}:{} {} {} [{}]",
                    d.file, d.line, d.column, d.severity, d.message, d.code
                ));
            }
        }
        Some(ToolOutcome::Done {
            reply: ToolReply::Exec(r),
        }) => {
            lines.push(format!(
                "exit {}  {} ms{}{}{}",
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.duration_ms,
                if r.timed_out { "  timed out" } else { "" },
                if r.oom_killed { "  out of memory" } else { "" },
                if r.output_truncated {
                    "  output cut"
                } else {
                    ""
                }
            ));
            lines.extend(r.stdout.lines().map(|l| format!("│ {l}")));
            lines.extend(r.stderr.lines().map(|l| format!("! {l}")));
        }
        Some(ToolOutcome::Skipped { reason }) => lines.push(format!("skipped: {reason}")),
        Some(ToolOutcome::Failed { error }) => lines.push(format!("failed: {error}")),
        _ => {}
    }
    StepView {
        label: summary,
        lines,
    }
}

/// Rows the console opens with; older tasks stay in the store.
pub const ROWS: usize = 500;

/// The newest tasks as rows, in one query.
pub fn load_rows(store: &Store) -> Result<Vec<RunRow>, String> {
    Ok(store
        .console_rows(ROWS)
        .map_err(|e| e.0)?
        .iter()
        .map(|(t, r)| RunRow::from_record(t, r.as_ref()))
        .collect())
}

/// Reads a task's latest run from the store. Runs on a blocking thread, never in render.
pub fn load_detail(store: &Store, task_id: &str, switch_percent: u8) -> Result<Detail, String> {
    let task = store
        .task(task_id)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("task {task_id} is gone"))?;
    let run = store
        .latest_run(task_id)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("task {task_id} has no run yet"))?;
    let agent: Option<Agent> = serde_json::from_str(&run.fsm_state).ok();
    let mut d = Detail {
        task_id: task.id.clone(),
        run_id: run.id.clone(),
        timeline: Vec::new(),
        output: LineRing::new(OUTPUT_CAP),
        diff: Vec::new(),
        lint: StepView::default(),
        tests: StepView::default(),
        exec: StepView::default(),
        skipped: agent
            .as_ref()
            .map(|a| a.skipped.clone())
            .unwrap_or_default(),
        issues: Vec::new(),
        budget: task.budget_micros,
        switch_percent,
        client_spent: store
            .client_month_spend(&task.client_id, &crate::time::current_month())
            .map_err(|e| e.0)?,
        client_cap: store
            .client(&task.client_id)
            .map_err(|e| e.0)?
            .map(|c| c.monthly_budget_micros)
            .unwrap_or(0),
        client_month_estimated: store
            .client_month_estimated(&task.client_id, &crate::time::current_month())
            .map_err(|e| e.0)?,
        repo: agent.as_ref().and_then(|a| a.repo.clone()),
        deliverable_url: task.deliverable_url.clone(),
        reported_difference: store.reported_difference(&task.id).map_err(|e| e.0)?,
    };
    for (at, kind, payload) in store.run_events_at(&run.id).map_err(|e| e.0)? {
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        match kind.as_str() {
            "state" => d.timeline.push(TimelineEntry {
                at,
                text: format!(
                    "{} · {}",
                    v["state"].as_str().unwrap_or(""),
                    v["step"].as_str().unwrap_or("")
                ),
            }),
            "tool" => {
                let step = v["step"].as_str().unwrap_or("");
                d.timeline.push(TimelineEntry {
                    at,
                    text: format!("  {step}: {}", v["summary"].as_str().unwrap_or("")),
                });
                match step {
                    "lint" | "fix_lint" => d.lint = step_view(&v),
                    "test" => d.tests = step_view(&v),
                    "execute" => d.exec = step_view(&v),
                    _ => {}
                }
            }
            "model_reply" => {
                d.output.push_line(format!(
                    "── {} ({}) ──",
                    v["purpose"].as_str().unwrap_or(""),
                    v["model"].as_str().unwrap_or("")
                ));
                d.output.push_text(v["text"].as_str().unwrap_or(""));
                d.output.push_text("\n");
            }
            "note" | "paused" | "refused" | "resumed" | "model_error" => {
                let text = v["text"]
                    .as_str()
                    .or(v["reason"].as_str())
                    .or(v["error"].as_str())
                    .unwrap_or(&kind)
                    .to_string();
                d.timeline.push(TimelineEntry {
                    at,
                    text: format!("  {kind}: {text}"),
                });
            }
            _ => {}
        }
    }
    // The audit trail's git and client-github operations join the timeline (tool calls are
    // there already, as their own events), in time order.
    let audited = store.audit(&task.id).map_err(|e| e.0)?;
    let before = d.timeline.len();
    for (run_id, entry) in audited {
        if run_id == run.id
            && (entry.tool.starts_with("git ") || entry.tool.starts_with("client-github"))
        {
            d.timeline.push(TimelineEntry {
                at: entry.at,
                text: format!(
                    "  {}: {} ({} ms)",
                    entry.tool, entry.outcome, entry.duration_ms
                ),
            });
        }
    }
    if d.timeline.len() > before {
        d.timeline.sort_by_key(|e| e.at);
    }
    if let Some(a) = &agent {
        for s in &a.subtasks {
            if let Some(e) = &s.evaluation {
                d.issues
                    .extend(e.issues.iter().map(|i| format!("{}: {i}", s.spec.filename)));
            }
        }
        if let Some(diff) = a.repo.as_ref().and_then(|r| r.diff.as_ref()) {
            // A repository run's diff is against its base commit, as git wrote it.
            d.diff = diff.patch.lines().map(str::to_string).collect();
        } else {
            for f in crate::engine::fsm::deliverable_files(a) {
                d.diff.push("--- /dev/null".to_string());
                d.diff.push(format!("+++ b/{}", f.path));
                d.diff
                    .push(format!("@@ -0,0 +1,{} @@", f.content.lines().count()));
                d.diff.extend(f.content.lines().map(|l| format!("+{l}")));
            }
        }
    }
    Ok(d)
}

impl Detail {
    /// Gives the row of this run's task the result status the detail holds: no event
    /// carries it, and the rows are read from the store only at start and after a lag.
    pub fn sync_result(&self, rows: &mut [RunRow]) {
        let result = self.repo.as_ref().and_then(|r| r.result);
        if let (Some(result), Some(row)) =
            (result, rows.iter_mut().find(|r| r.task_id == self.task_id))
        {
            row.result = Some(result.as_str().to_string());
        }
    }

    /// Adds text this run's model streamed.
    pub fn push_streamed(&mut self, text: &str) {
        self.output.push_text(text);
    }

    /// Applies a live event of this run.
    pub fn apply(&mut self, event: &Event, now_ms: i64) {
        match event {
            Event::ModelDelta { text, .. } => self.output.push_text(text),
            Event::ModelStarted {
                purpose,
                model,
                simulated,
                ..
            } => {
                self.output.push_text("\n");
                self.output.push_line(format!(
                    "── {purpose} ({model}{}) ──",
                    if *simulated { ", simulated" } else { "" }
                ));
            }
            Event::StateChanged { state, step, .. } => self.timeline.push(TimelineEntry {
                at: now_ms,
                text: format!("{} · {step}", state.as_str()),
            }),
            Event::ToolFinished { step, summary, .. } => self.timeline.push(TimelineEntry {
                at: now_ms,
                text: format!("  {step}: {summary}"),
            }),
            Event::Delivered { url, .. } => self.deliverable_url = Some(url.clone()),
            Event::Note { text, .. } => self.timeline.push(TimelineEntry {
                at: now_ms,
                text: format!("  note: {text}"),
            }),
            Event::CostRecorded {
                client_month_micros,
                estimated,
                ..
            } => {
                self.client_spent = *client_month_micros;
                self.client_month_estimated |= *estimated;
            }
            _ => {}
        }
    }
}
