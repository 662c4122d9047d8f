//! The Clients view: each client's month as the business runs on it. The cap as a gauge
//! with the month's spend (real and simulated apart), what in-flight calls hold, the burn
//! rate, the projection to the month's end and the day the cap is reached; the month's
//! tasks and the spend by model; revenue and margin. From here the operator sets a cap,
//! raises a task's budget and resumes the runs a raised cap let go.
//!
//! The figures come from the store (`budgets::month`), loaded off the UI loop; the latest
//! load wins, and a load asked for while one runs is made once that one is back. Between
//! loads the spend the supervisor reports keeps the 80 % warning current.

mod draw;

pub use draw::draw;

use super::dialogs::Overlay;
use super::money_dialog::{MoneyDialog, MoneyFor};
use crate::budgets::{ClientMonth, WARN_PERCENT};
use crate::console::app::Effect;
use crate::console::keymap::Action;
use crate::money::Micros;
use crate::supervisor::{Command, Event};
use std::collections::HashMap;

#[derive(Default)]
pub struct ClientsView {
    /// None until the first load is back.
    pub months: Option<Result<Vec<ClientMonth>, String>>,
    request: u64,
    in_flight: bool,
    /// Something changed while a load ran: load again when it is back.
    stale: bool,
    /// Month spend per client reported since the last load (the ledger's figure).
    live: HashMap<String, Micros>,
    pub sel: usize,
    /// The keys move in the selected client's tasks (else in the clients).
    pub on_tasks: bool,
    pub task_sel: usize,
}

/// A client the header warns about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    pub client_id: &'a str,
    pub percent: u32,
    /// Runs paused on the client's cap (a call that would pass it was refused).
    pub paused: usize,
}

/// What a key of the view led to.
#[derive(Default)]
pub struct ClientsOutcome {
    pub effects: Vec<Effect>,
    pub dialog: Option<Overlay>,
    pub notice: Option<String>,
}

impl ClientsView {
    /// A load of every client's month, unless one is under way (then it is made after).
    pub fn reload(&mut self) -> Option<Effect> {
        if self.in_flight {
            self.stale = true;
            return None;
        }
        self.request += 1;
        self.in_flight = true;
        self.stale = false;
        Some(Effect::LoadClients {
            request: self.request,
        })
    }

    /// The months the loop loaded; an older request's answer is dropped.
    pub fn loaded(
        &mut self,
        request: u64,
        months: Result<Vec<ClientMonth>, String>,
    ) -> Option<Effect> {
        if request != self.request {
            return None;
        }
        self.in_flight = false;
        if months.is_ok() {
            self.live.clear();
        }
        self.months = Some(months);
        self.clamp();
        if self.stale { self.reload() } else { None }
    }

    pub fn list(&self) -> &[ClientMonth] {
        match &self.months {
            Some(Ok(m)) => m,
            _ => &[],
        }
    }

    pub fn selected(&self) -> Option<&ClientMonth> {
        self.list().get(self.sel)
    }

    /// The month spend charged to `client`'s cap: the newest the supervisor reported.
    pub fn charged(&self, m: &ClientMonth) -> Micros {
        self.live
            .get(&m.client_id)
            .copied()
            .unwrap_or(0)
            .max(m.charged_micros())
    }

    /// Percent of the cap charged, with the newest spend.
    pub fn percent(&self, m: &ClientMonth) -> u32 {
        if m.cap_micros <= 0 {
            return 100;
        }
        ((self.charged(m).max(0) as i128 * 100) / m.cap_micros as i128).min(u32::MAX as i128) as u32
    }

    /// Clients at or past the warning share of their cap, or with runs paused on it, with
    /// the share.
    pub fn warnings(&self) -> Vec<Warning<'_>> {
        self.list()
            .iter()
            .map(|m| Warning {
                client_id: &m.client_id,
                percent: self.percent(m),
                paused: m.paused.len(),
            })
            .filter(|w| w.percent >= WARN_PERCENT || w.paused > 0)
            .collect()
    }

    /// The warnings as text, to tell whether a load changed them.
    pub fn warning_text(&self) -> String {
        self.warnings()
            .iter()
            .map(|w| format!("{}:{}:{}", w.client_id, w.percent, w.paused))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn selected_task(&self) -> Option<String> {
        if !self.on_tasks {
            return None;
        }
        self.selected()
            .and_then(|m| m.tasks.get(self.task_sel))
            .map(|t| t.task_id.clone())
    }

    fn clamp(&mut self) {
        let n = self.list().len();
        self.sel = self.sel.min(n.saturating_sub(1));
        let tasks = self.selected().map(|m| m.tasks.len()).unwrap_or(0);
        self.task_sel = self.task_sel.min(tasks.saturating_sub(1));
    }

    pub fn click(&mut self, row: usize) {
        if self.on_tasks {
            self.task_sel = row;
        } else {
            self.sel = row;
        }
        self.clamp();
    }

    /// What the supervisor said, as far as money is concerned. Spend moves the warning at
    /// once; settled points load the months again while the view is on screen.
    pub fn apply(&mut self, event: &Event, visible: bool) -> Option<Effect> {
        match event {
            Event::CostRecorded {
                client_id,
                client_month_micros,
                ..
            } => {
                self.live.insert(client_id.clone(), *client_month_micros);
                visible.then(|| self.reload()).flatten()
            }
            // A cap changed: the warning may go; load whether on screen or not.
            Event::BudgetChanged { .. } => self.reload(),
            Event::Paused { .. }
            | Event::RunFinished { .. }
            | Event::TaskCreated { .. }
            | Event::AwaitingApproval { .. }
            | Event::DecisionRecorded { .. }
            | Event::RunStarted { .. } => visible.then(|| self.reload()).flatten(),
            _ => None,
        }
    }

    pub fn act(&mut self, action: Action) -> ClientsOutcome {
        let mut out = ClientsOutcome::default();
        match action {
            Action::Next | Action::Prev => {
                let step: isize = if action == Action::Next { 1 } else { -1 };
                let (sel, len) = if self.on_tasks {
                    let n = self.selected().map(|m| m.tasks.len()).unwrap_or(0);
                    (&mut self.task_sel, n)
                } else {
                    let n = self.list().len();
                    (&mut self.sel, n)
                };
                *sel = (*sel as isize + step).clamp(0, len.saturating_sub(1) as isize) as usize;
                if !self.on_tasks {
                    self.task_sel = 0;
                }
            }
            Action::NextPane => {
                self.on_tasks =
                    !self.on_tasks && self.selected().is_some_and(|m| !m.tasks.is_empty());
                self.task_sel = 0;
            }
            Action::SetCap => match self.selected() {
                Some(m) => {
                    out.dialog = Some(Overlay::Money(Box::new(MoneyDialog::new(
                        MoneyFor::ClientCap {
                            client_id: m.client_id.clone(),
                        },
                        m.cap_micros,
                    ))))
                }
                None => out.notice = Some("there is no client to set a cap for".into()),
            },
            Action::RaiseBudget => out = self.raise_budget(),
            Action::ResumePaused => match self.selected() {
                Some(m) if !m.paused.is_empty() => {
                    let mut seen = Vec::new();
                    for p in &m.paused {
                        if !seen.contains(&p.task_id) {
                            seen.push(p.task_id.clone());
                            out.effects.push(Effect::Send(Command::Resume {
                                task_id: p.task_id.clone(),
                            }));
                        }
                    }
                }
                Some(m) => {
                    out.notice = Some(format!("no run of {} is paused", m.client_id));
                }
                None => {}
            },
            _ => {}
        }
        out
    }

    /// The budget dialog for the selected task, or else the client's first paused one.
    fn raise_budget(&self) -> ClientsOutcome {
        let mut out = ClientsOutcome::default();
        let Some(m) = self.selected() else {
            return out;
        };
        let task = if self.on_tasks {
            m.tasks.get(self.task_sel)
        } else {
            m.paused
                .first()
                .and_then(|p| m.tasks.iter().find(|t| t.task_id == p.task_id))
        };
        match task {
            Some(t) => {
                out.dialog = Some(Overlay::Money(Box::new(MoneyDialog::new(
                    MoneyFor::TaskBudget {
                        task_id: t.task_id.clone(),
                    },
                    t.budget_micros,
                ))))
            }
            None => out.notice = Some(
                "select a task first: Tab moves to the client's tasks, then b raises its budget"
                    .into(),
            ),
        }
        out
    }
}
