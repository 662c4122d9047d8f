//! The Containers view: every container ecca manages, live from Docker's event and stats
//! streams (the watcher in `crate::containers::watch`), and for the selected one its tools
//! as ecca's client counted their calls, the runs using it now, or its logs. Actions are
//! commands: the view decides (remove asks first), the supervisor acts.

mod draw;

pub use draw::draw;

use crate::console::app::Effect;
use crate::console::keymap::{Action, Context};
use crate::console::model::RunRow;
use crate::console::views::dialogs::Overlay;
use crate::containers::managed::{ContainerRow, ContainerVerb};
use crate::containers::watch::ContainersSnapshot;
use crate::engine::tools::ToolCallStats;
use crate::supervisor::Command;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::VecDeque;
use std::sync::Arc;

/// The most log text kept for the selected container; older lines go first.
pub const LOG_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    #[default]
    Tools,
    Logs,
}

/// The selected container's log lines, capped in bytes.
#[derive(Debug, Default, Clone)]
pub struct LogRing {
    pub lines: VecDeque<String>,
    bytes: usize,
    /// Lines dropped to stay under the cap.
    pub dropped: u64,
}

impl LogRing {
    pub fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.bytes > LOG_BYTES {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[derive(Default)]
pub struct ContainersView {
    pub snapshot: Arc<ContainersSnapshot>,
    /// The watcher was asked for (the first time the view opened).
    pub watching: bool,
    pub sel: usize,
    pub pane: Pane,
    /// Whose logs `logs` holds (container name), and the request that follows them.
    pub logs_of: Option<String>,
    /// When the followed container had started: a restart ends Docker's log stream, so a
    /// new start follows again.
    logs_started: Option<i64>,
    pub logs: LogRing,
    log_request: u64,
    /// Lines up from the newest; 0 follows the end.
    pub log_scroll: usize,
    pub search: String,
    pub searching: bool,
    pub tools: Vec<ToolCallStats>,
    /// The registry's servers and the clients, for the start-a-server picker.
    pub servers: Vec<String>,
    pub clients: Vec<String>,
    /// The last line of an image build started here.
    pub build_progress: Option<String>,
}

/// What a key did beyond the view's own state.
#[derive(Default)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    pub dialog: Option<Overlay>,
}

impl ContainersView {
    /// Entering the view: start the watcher once, read the tool counts, follow logs.
    pub fn entered(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if !self.watching {
            self.watching = true;
            effects.push(Effect::WatchContainers);
        }
        effects.push(Effect::LoadToolStats);
        effects.extend(self.follow_selected());
        effects
    }

    pub fn contexts(&self) -> Vec<Context> {
        if self.searching {
            vec![Context::Filter]
        } else {
            vec![Context::Containers, Context::Global]
        }
    }

    pub fn selected(&self) -> Option<&ContainerRow> {
        self.snapshot.rows.get(self.sel)
    }

    /// A new snapshot from the watcher; the selection stays on the same container.
    pub fn snapshot_changed(&mut self, snapshot: Arc<ContainersSnapshot>) -> Vec<Effect> {
        let before = self.selected().map(|r| r.name.clone());
        self.snapshot = snapshot;
        if let Some(name) = before
            && let Some(i) = self.snapshot.rows.iter().position(|r| r.name == name)
        {
            self.sel = i;
        }
        self.sel = self.sel.min(self.snapshot.rows.len().saturating_sub(1));
        self.follow_selected()
    }

    /// Log lines that arrived for request `request`; stale ones are dropped.
    pub fn log_lines(&mut self, request: u64, lines: Vec<String>) -> bool {
        if request != self.log_request {
            return false;
        }
        for l in lines {
            self.logs.push(l);
        }
        true
    }

    /// Follow the selected container's logs when it is not the one followed already.
    fn follow_selected(&mut self) -> Vec<Effect> {
        let name = self.selected().map(|r| r.name.clone());
        let started = self.selected().and_then(|r| r.started_at_ms);
        let restarted = started.is_some() && started != self.logs_started;
        if name == self.logs_of && !restarted {
            return vec![];
        }
        self.logs_of = name.clone();
        self.logs_started = started;
        self.logs = LogRing::default();
        self.log_scroll = 0;
        self.log_request += 1;
        match name {
            Some(container) => vec![Effect::FollowLogs {
                container,
                request: self.log_request,
            }],
            None => vec![Effect::StopLogs],
        }
    }

    /// The runs whose current step calls `server`.
    pub fn runs_using<'a>(&self, server: &str, rows: &'a [RunRow]) -> Vec<&'a RunRow> {
        rows.iter()
            .filter(|r| !r.status.is_terminal())
            .filter(|r| crate::engine::fsm::servers_of_step(&r.step).contains(&server))
            .collect()
    }

    /// Log lines that match the search (all of them with none).
    pub fn visible_logs(&self) -> Vec<&str> {
        let needle = self.search.to_lowercase();
        self.logs
            .lines
            .iter()
            .filter(|l| needle.is_empty() || l.to_lowercase().contains(&needle))
            .map(String::as_str)
            .collect()
    }

    pub fn act(&mut self, action: Action) -> Outcome {
        let mut out = Outcome::default();
        let n = self.snapshot.rows.len();
        match action {
            Action::Next if n > 0 => {
                self.sel = (self.sel + 1).min(n - 1);
                out.effects = self.follow_selected();
            }
            Action::Prev => {
                self.sel = self.sel.saturating_sub(1);
                out.effects = self.follow_selected();
            }
            Action::NextPane | Action::PrevPane => {
                self.pane = match self.pane {
                    Pane::Tools => Pane::Logs,
                    Pane::Logs => Pane::Tools,
                };
                if self.pane == Pane::Tools {
                    out.effects.push(Effect::LoadToolStats);
                }
            }
            Action::ScrollUp => self.log_scroll += 1,
            Action::ScrollDown => self.log_scroll = self.log_scroll.saturating_sub(1),
            Action::PageUp => self.log_scroll += 10,
            Action::PageDown => self.log_scroll = self.log_scroll.saturating_sub(10),
            Action::Bottom => self.log_scroll = 0,
            Action::Filter => {
                self.pane = Pane::Logs;
                self.searching = true;
            }
            Action::ContainerStart | Action::ContainerStop | Action::ContainerRestart => {
                if let Some(row) = self.selected() {
                    let verb = match action {
                        Action::ContainerStart => ContainerVerb::Start,
                        Action::ContainerStop => ContainerVerb::Stop,
                        _ => ContainerVerb::Restart,
                    };
                    out.effects.push(Effect::Send(Command::Container {
                        name: row.name.clone(),
                        verb,
                    }));
                }
            }
            Action::ContainerRemove => {
                if let Some(row) = self.selected() {
                    out.dialog = Some(Overlay::ConfirmCommand {
                        title: format!("Remove {}?", row.name),
                        lines: vec![
                            format!("{} ({}) is {}.", row.name, row.image, row.state),
                            "Removing stops it and deletes the container; its volumes stay.".into(),
                        ],
                        command: Box::new(Command::Container {
                            name: row.name.clone(),
                            verb: ContainerVerb::Remove,
                        }),
                    });
                }
            }
            Action::StartServer => out.dialog = Some(self.picker()),
            Action::BuildImages => {
                self.build_progress = Some("building images…".into());
                out.effects.push(Effect::Send(Command::BuildImages));
            }
            _ => {}
        }
        out
    }

    /// The servers that can be started: the registry's, and client-github per client.
    fn picker(&self) -> Overlay {
        let mut options: Vec<(String, Command)> = self
            .servers
            .iter()
            .filter(|s| s.as_str() != "client-github")
            .map(|s| {
                (
                    s.clone(),
                    Command::StartServer {
                        server: s.clone(),
                        client: None,
                    },
                )
            })
            .collect();
        for c in &self.clients {
            options.push((
                format!("client-github for {c}"),
                Command::StartServer {
                    server: "client-github".into(),
                    client: Some(c.clone()),
                },
            ));
        }
        Overlay::Pick {
            title: "Start a server".into(),
            options,
            sel: 0,
        }
    }

    /// Typing the log search: printable keys edit it, enter keeps it, esc clears it.
    pub fn search_act(&mut self, action: Action) {
        match action {
            Action::Cancel => {
                self.search.clear();
                self.searching = false;
            }
            Action::Submit | Action::Open | Action::Confirm => self.searching = false,
            _ => {}
        }
    }

    pub fn search_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Backspace => {
                self.search.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.search.push(c)
            }
            _ => {}
        }
        self.log_scroll = 0;
    }

    pub fn click(&mut self, row: usize) -> Vec<Effect> {
        if row < self.snapshot.rows.len() {
            self.sel = row;
        }
        self.follow_selected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_ring_keeps_the_newest_lines_under_its_byte_cap() {
        let mut ring = LogRing::default();
        let line = "x".repeat(1000);
        for _ in 0..1000 {
            ring.push(line.clone());
        }
        assert!(ring.bytes() <= LOG_BYTES);
        assert_eq!(ring.lines.len(), LOG_BYTES / 1000);
        assert_eq!(ring.dropped, 1000 - (LOG_BYTES / 1000) as u64);
    }
}
