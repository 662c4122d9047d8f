//! The dialog that changes money: a client's monthly cap or a task's budget, as an exact
//! dollar amount and a note saying why (both are stored with the change and shown in the
//! audit). Tab moves between the two fields; the dialog only collects the decision.

use super::block;
use super::overlays::centered;
use crate::console::app::App;
use crate::console::keymap::{Action, Context};
use crate::console::theme::Role;
use crate::money::{Micros, format_usd, parse_usd};
use crate::supervisor::Command;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui_textarea::TextArea;

/// What the amount is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyFor {
    ClientCap { client_id: String },
    TaskBudget { task_id: String },
}

pub struct MoneyDialog {
    pub purpose: MoneyFor,
    /// The amount in force now, shown for reference.
    pub current: Micros,
    pub amount: TextArea<'static>,
    pub note: TextArea<'static>,
    /// The note has the keys (else the amount).
    pub on_note: bool,
    /// Why the last submit was refused.
    pub error: Option<String>,
}

/// How a key in the dialog ended it.
#[derive(Debug, PartialEq)]
pub enum MoneyEnd {
    Cancelled,
    Send(Box<Command>),
    Invalid(String),
}

impl MoneyDialog {
    pub fn new(purpose: MoneyFor, current: Micros) -> MoneyDialog {
        let mut amount = TextArea::default();
        amount.set_placeholder_text("e.g. 150.00");
        let mut note = TextArea::default();
        note.set_placeholder_text("why? (kept with the change and shown in the audit)");
        let mut dialog = MoneyDialog {
            purpose,
            current,
            amount,
            note,
            on_note: false,
            error: None,
        };
        dialog.show_focus();
        dialog
    }

    /// Only the field with the keys shows a cursor.
    pub fn show_focus(&mut self) {
        let cursor = Style::default().add_modifier(Modifier::REVERSED);
        let (on, off) = if self.on_note {
            (&mut self.note, &mut self.amount)
        } else {
            (&mut self.amount, &mut self.note)
        };
        on.set_cursor_style(cursor);
        off.set_cursor_style(Style::default());
    }

    pub fn title(&self) -> String {
        match &self.purpose {
            MoneyFor::ClientCap { client_id } => format!("Monthly cap of {client_id}"),
            MoneyFor::TaskBudget { task_id } => format!("Budget of {task_id}"),
        }
    }

    pub fn act(&mut self, action: Action) -> Option<MoneyEnd> {
        match action {
            Action::Cancel => Some(MoneyEnd::Cancelled),
            Action::Submit => Some(self.decision()),
            _ => None,
        }
    }

    /// The command the fields make, or why they make none.
    fn decision(&self) -> MoneyEnd {
        let text = self.amount.lines().join("");
        let micros = match parse_usd(text.trim()) {
            Ok(m) => m,
            Err(e) => return MoneyEnd::Invalid(e),
        };
        let note = self.note.lines().join("\n").trim().to_string();
        if note.is_empty() {
            return MoneyEnd::Invalid(
                "write a note saying why the amount changes; it is kept in the audit".into(),
            );
        }
        MoneyEnd::Send(Box::new(match &self.purpose {
            MoneyFor::ClientCap { client_id } => Command::SetClientCap {
                client_id: client_id.clone(),
                monthly_budget_micros: micros,
                note,
            },
            MoneyFor::TaskBudget { task_id } => Command::SetTaskBudget {
                task_id: task_id.clone(),
                budget_micros: micros,
                note,
            },
        }))
    }

    pub fn key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => {
                self.on_note = !self.on_note;
                self.show_focus();
            }
            // The amount is one line: Enter moves on to the note.
            KeyCode::Enter if !self.on_note => {
                self.on_note = true;
                self.show_focus();
            }
            _ if self.on_note => {
                self.note.input(key);
            }
            _ => {
                self.amount.input(key);
            }
        }
    }

    pub fn paste(&mut self, text: &str) {
        if self.on_note {
            self.note.insert_str(text);
        } else {
            self.amount.insert_str(text.replace(['\r', '\n'], ""));
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App, dialog: &MoneyDialog, area: Rect) {
    let t = &app.theme;
    let box_area = centered(area, area.width.saturating_sub(6).min(80), 12);
    frame.render_widget(Clear, box_area);
    let title = dialog.title();
    let b = block(app, &title);
    let inner = b.inner(box_area);
    frame.render_widget(b, box_area);
    let [now, amount_label, amount, note_label, note, error, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let label = |text: &str, on: bool| {
        Paragraph::new(Span::styled(
            text.to_string(),
            if on {
                t.fg(Role::Accent)
            } else {
                t.fg(Role::Muted)
            },
        ))
    };
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!("now: {}", format_usd(dialog.current)),
            t.fg(Role::Text),
        )),
        now,
    );
    frame.render_widget(label("new amount (USD)", !dialog.on_note), amount_label);
    frame.render_widget(&dialog.amount, amount);
    frame.render_widget(label("note", dialog.on_note), note_label);
    frame.render_widget(&dialog.note, note);
    if let Some(e) = &dialog.error {
        frame.render_widget(
            Paragraph::new(Span::styled(e.clone(), t.fg(Role::Error))),
            error,
        );
    }
    let mut keys: Vec<String> = app
        .keymap
        .footer(&[Context::Note])
        .into_iter()
        .map(|(key, help)| format!("{key} {help}"))
        .collect();
    keys.push("Tab next field".into());
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            keys.join(" · "),
            t.fg(Role::Muted),
        ))),
        hint,
    );
}
