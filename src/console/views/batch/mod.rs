//! The Batch view: open a manifest (a path field with completion, or a batch launched
//! before), see its forecast, launch it with a confirmation, then follow the scoreboard:
//! one row per app with its state, iteration, quality, cost against the forecast, elapsed
//! time and result; totals, throughput and an ETA. One key retries every failed app,
//! another cancels the batch, Enter opens an app's run. Approvals of a batch are reviewed
//! one by one in the Approvals view, as any other.
//!
//! Manifests, forecasts and batches are read off the UI loop (`console::loads`); each
//! stage keeps only the answer to its newest request.

mod draw;

pub use draw::draw;

use super::dialogs::Overlay;
use crate::batch::forecast::Forecast;
use crate::config::ProviderKind;
use crate::console::app::Effect;
use crate::console::keymap::{Action, Context};
use crate::money::{Micros, format_usd};
use crate::store::BatchRecord;
use crate::supervisor::{Command, Event, NewBatch};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// Writing a manifest's path, or choosing a batch launched before.
    #[default]
    Open,
    Forecast,
    Board,
}

/// A manifest read and forecast, ready to launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedForecast {
    pub path: String,
    /// The manifest's text, launched as read.
    pub text: String,
    pub name: String,
    pub client_id: String,
    pub concurrency: u32,
    /// Per app, in the manifest's order: its stack.
    pub stacks: Vec<String>,
    pub forecast: Forecast,
    /// The model mode the forecast is for (`offline`, `anthropic`, …).
    pub mode: String,
}

/// One app of a launched batch: its task, and what the forecast expected it to cost.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardApp {
    pub app: String,
    pub task_id: String,
    pub expected_micros: Option<Micros>,
}

/// A launched batch as the scoreboard shows it; the apps' live figures come from the task
/// rows the supervisor's events keep current.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    pub batch: BatchRecord,
    pub apps: Vec<BoardApp>,
    pub forecast: Option<Forecast>,
}

#[derive(Default)]
pub struct BatchView {
    pub stage: Stage,
    pub path: String,
    /// What the last completion found, when it found several.
    pub completions: Vec<String>,
    pub batches: Option<Result<Vec<BatchRecord>, String>>,
    pub list_sel: usize,
    pub forecast: Option<Result<LoadedForecast, String>>,
    pub board: Option<Result<Board, String>>,
    /// The first app row of the forecast on screen.
    pub forecast_top: usize,
    /// The scoreboard's selected app.
    pub sel: usize,
    request: u64,
}

impl BatchView {
    pub fn contexts(&self) -> Vec<Context> {
        match self.stage {
            // The path field takes every key the table does not bind.
            Stage::Open => vec![Context::BatchOpen],
            Stage::Forecast => vec![Context::BatchForecast, Context::Global],
            Stage::Board => vec![Context::Batch, Context::Global],
        }
    }

    fn next_request(&mut self) -> u64 {
        self.request += 1;
        self.request
    }

    /// Whether `request` is the newest; older answers are dropped.
    pub fn is_current(&self, request: u64) -> bool {
        request == self.request
    }

    /// The view came on screen: read what its stage shows again.
    pub fn entered(&mut self) -> Vec<Effect> {
        match self.stage {
            Stage::Open => vec![Effect::LoadBatches {
                request: self.next_request(),
            }],
            Stage::Forecast => vec![],
            Stage::Board => self.reload_board(),
        }
    }

    fn reload_board(&mut self) -> Vec<Effect> {
        match &self.board {
            Some(Ok(b)) => {
                let batch_id = b.batch.id.clone();
                vec![Effect::LoadBatch {
                    batch_id,
                    request: self.next_request(),
                }]
            }
            _ => vec![],
        }
    }

    pub fn batches_loaded(&mut self, request: u64, batches: Result<Vec<BatchRecord>, String>) {
        if self.is_current(request) {
            self.batches = Some(batches);
            let n = self.batch_list().len();
            self.list_sel = self.list_sel.min(n.saturating_sub(1));
        }
    }

    pub fn forecast_loaded(&mut self, request: u64, f: Result<LoadedForecast, String>) {
        if self.is_current(request) {
            self.forecast = Some(f);
        }
    }

    pub fn board_loaded(&mut self, request: u64, board: Result<Board, String>) {
        if self.is_current(request) {
            self.board = Some(board);
            let n = self.apps().len();
            self.sel = self.sel.min(n.saturating_sub(1));
        }
    }

    pub fn batch_list(&self) -> &[BatchRecord] {
        match &self.batches {
            Some(Ok(b)) => b,
            _ => &[],
        }
    }

    pub fn apps(&self) -> &[BoardApp] {
        match &self.board {
            Some(Ok(b)) => &b.apps,
            _ => &[],
        }
    }

    pub fn selected_task(&self) -> Option<String> {
        (self.stage == Stage::Board)
            .then(|| self.apps().get(self.sel).map(|a| a.task_id.clone()))
            .flatten()
    }

    pub fn click(&mut self, row: usize) {
        match self.stage {
            Stage::Open => self.list_sel = row.min(self.batch_list().len().saturating_sub(1)),
            Stage::Board => self.sel = row.min(self.apps().len().saturating_sub(1)),
            Stage::Forecast => {}
        }
    }

    /// A batch launched from the forecast on screen takes the view to its scoreboard; a
    /// batch that ended is read again for its status.
    pub fn apply(&mut self, event: &Event) -> Vec<Effect> {
        match event {
            Event::BatchStarted { batch_id, name, .. } => {
                let ours = self.stage == Stage::Forecast
                    && matches!(&self.forecast, Some(Ok(f)) if &f.name == name);
                if ours {
                    self.stage = Stage::Board;
                    self.board = None;
                    self.sel = 0;
                    return vec![Effect::LoadBatch {
                        batch_id: batch_id.clone(),
                        request: self.next_request(),
                    }];
                }
                vec![]
            }
            Event::BatchFinished { batch_id, .. } => match &self.board {
                Some(Ok(b)) if &b.batch.id == batch_id && self.stage == Stage::Board => {
                    self.reload_board()
                }
                _ => vec![],
            },
            _ => vec![],
        }
    }

    /// A key the table does not bind: the path field's text.
    pub fn key(&mut self, key: KeyEvent) {
        if self.stage != Stage::Open {
            return;
        }
        match key.code {
            KeyCode::Char(c) => self.path.push(c),
            KeyCode::Backspace => {
                self.path.pop();
            }
            _ => return,
        }
        self.completions.clear();
    }

    pub fn paste(&mut self, text: &str) -> bool {
        if self.stage != Stage::Open {
            return false;
        }
        self.path.push_str(text.trim());
        true
    }

    pub fn act(
        &mut self,
        action: Action,
        provider: ProviderKind,
    ) -> (Vec<Effect>, Option<Overlay>) {
        let mut effects = Vec::new();
        let mut dialog = None;
        match (self.stage, action) {
            (Stage::Open, Action::Complete) => self.complete(),
            (Stage::Open, Action::Next | Action::Prev) => {
                let step: isize = if action == Action::Next { 1 } else { -1 };
                let n = self.batch_list().len();
                self.list_sel =
                    (self.list_sel as isize + step).clamp(0, n.saturating_sub(1) as isize) as usize;
            }
            (Stage::Open, Action::Submit) => {
                if !self.path.trim().is_empty() {
                    self.stage = Stage::Forecast;
                    self.forecast = None;
                    self.forecast_top = 0;
                    effects.push(Effect::LoadForecast {
                        path: self.path.trim().to_string(),
                        request: self.next_request(),
                    });
                } else if let Some(b) = self.batch_list().get(self.list_sel) {
                    let batch_id = b.id.clone();
                    self.stage = Stage::Board;
                    self.board = None;
                    self.sel = 0;
                    effects.push(Effect::LoadBatch {
                        batch_id,
                        request: self.next_request(),
                    });
                }
            }
            (Stage::Forecast, Action::Next | Action::Prev) => {
                let n = match &self.forecast {
                    Some(Ok(f)) => f.forecast.apps.len(),
                    _ => 0,
                };
                self.forecast_top = if action == Action::Next {
                    (self.forecast_top + 1).min(n.saturating_sub(1))
                } else {
                    self.forecast_top.saturating_sub(1)
                };
            }
            (Stage::Forecast, Action::Launch) => {
                if let Some(Ok(f)) = &self.forecast {
                    dialog = Some(launch_dialog(f, provider));
                }
            }
            (Stage::Forecast | Stage::Board, Action::Back) => {
                self.stage = Stage::Open;
                effects.push(Effect::LoadBatches {
                    request: self.next_request(),
                });
            }
            (Stage::Board, Action::Next | Action::Prev) => {
                let step: isize = if action == Action::Next { 1 } else { -1 };
                let n = self.apps().len();
                self.sel =
                    (self.sel as isize + step).clamp(0, n.saturating_sub(1) as isize) as usize;
            }
            (Stage::Board, Action::RetryFailed) => {
                if let Some(Ok(b)) = &self.board {
                    effects.push(Effect::Send(Command::RetryBatch {
                        batch_id: b.batch.id.clone(),
                    }));
                }
            }
            (Stage::Board, Action::CancelBatch) => {
                if let Some(Ok(b)) = &self.board {
                    dialog = Some(Overlay::ConfirmCommand {
                        title: format!("Cancel {}?", b.batch.id),
                        lines: vec![format!(
                            "Cancel every app of {} ({}) that has not ended? Finished apps and \
                             their costs stay.",
                            b.batch.id, b.batch.name
                        )],
                        command: Box::new(Command::CancelBatch {
                            batch_id: b.batch.id.clone(),
                        }),
                    });
                }
            }
            _ => {}
        }
        (effects, dialog)
    }

    /// Completes the path from the file system: one match is taken, several are listed and
    /// their common start is taken. (A directory listing is quick enough for the loop.)
    fn complete(&mut self) {
        let (dir, prefix) = match self.path.rfind('/') {
            Some(i) => (&self.path[..=i], &self.path[i + 1..]),
            None => ("", self.path.as_str()),
        };
        let read_from = if dir.is_empty() { "." } else { dir };
        let Ok(entries) = std::fs::read_dir(read_from) else {
            self.completions = vec![format!("no directory {read_from}")];
            return;
        };
        let mut found: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let keep = name.starts_with(prefix)
                    && !name.starts_with('.')
                    && (is_dir || name.ends_with(".toml"));
                keep.then(|| if is_dir { format!("{name}/") } else { name })
            })
            .collect();
        found.sort();
        let dir = dir.to_string();
        match found.as_slice() {
            [] => self.completions = vec![format!("no manifest (.toml) starts with {prefix:?}")],
            [one] => {
                self.path = format!("{dir}{one}");
                self.completions.clear();
            }
            many => {
                let common = common_prefix(many);
                self.path = format!("{dir}{common}");
                self.completions = many.to_vec();
            }
        }
    }
}

fn common_prefix(names: &[String]) -> String {
    let first = &names[0];
    let mut end = first.len();
    for n in &names[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(n.chars())
                .find(|((_, a), b)| a != b)
                .map(|((i, _), _)| i)
                .unwrap_or(first.len().min(n.len())),
        );
    }
    first[..end].to_string()
}

/// The confirmation before launch: what it will cost, and what it passes.
fn launch_dialog(f: &LoadedForecast, provider: ProviderKind) -> Overlay {
    let fc = &f.forecast;
    let over = fc.over_budget();
    let mut lines = vec![
        format!(
            "Launch {} app(s) of {} for {}, {} at once, on the {} model?",
            fc.apps.len(),
            f.name,
            f.client_id,
            f.concurrency,
            f.mode
        ),
        format!(
            "expected {} (low {}, high {}); {} left in the client's month",
            format_usd(fc.expected_micros),
            format_usd(fc.low_micros),
            format_usd(fc.high_micros),
            format_usd(fc.remaining_month_micros.max(0))
        ),
    ];
    if let Some(why) = &over {
        lines.push(format!(
            "Over budget: {why}. Launch anyway? The ledger still refuses any call past the cap."
        ));
    }
    Overlay::ConfirmCommand {
        title: if over.is_some() {
            "Launch past the budget?".into()
        } else {
            "Launch the batch?".into()
        },
        lines,
        command: Box::new(Command::StartBatch {
            batch: Box::new(NewBatch {
                manifest: f.text.clone(),
                source: f.path.clone(),
                concurrency: None,
                confirmed_over_budget: over.is_some(),
                provider: Some(provider),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_start_of_names_is_found_on_char_boundaries() {
        let names = vec!["rork-a.toml".to_string(), "rork-b.toml".to_string()];
        assert_eq!(common_prefix(&names), "rork-");
        let names = vec!["été.toml".to_string(), "étang/".to_string()];
        assert_eq!(common_prefix(&names), "ét");
    }
}
