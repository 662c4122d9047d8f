//! The dialogs' state and keys: help, the note of a revise, reject or secret override, the
//! reject confirmation, the critical review, a confirmation before a command, and the
//! amount-and-note of a budget change. Dialogs only collect a decision; what they decide
//! leaves as an `Effect::Send` and the supervisor acts on it (drawing: `overlays`).

use super::critical_review::{self, Approval, CriticalReview, ReviewEnd};
use super::money_dialog::{MoneyDialog, MoneyEnd};
use crate::console::app::{App, Effect};
use crate::console::keymap::{Action, Context};
use crate::supervisor::{ApprovalReview, Command};
use ratatui::crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

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
    /// A command that needs a second key (launching past the month, cancelling a batch).
    ConfirmCommand {
        title: String,
        lines: Vec<String>,
        command: Box<Command>,
    },
    /// A new cap or budget, with the note kept beside it.
    Money(Box<MoneyDialog>),
    /// One of several commands to pick (the server to start).
    Pick {
        title: String,
        options: Vec<(String, Command)>,
        sel: usize,
    },
}

impl Overlay {
    /// The keymap contexts the overlay puts in force.
    pub fn contexts(&self) -> Vec<Context> {
        match self {
            Overlay::Help => vec![Context::Help, Context::Global],
            Overlay::Note { .. } | Overlay::Money(_) => vec![Context::Note],
            Overlay::Confirm { .. } | Overlay::ConfirmCommand { .. } => vec![Context::Confirm],
            Overlay::Review(_) => vec![Context::Review],
            Overlay::Pick { .. } => vec![Context::Pick],
        }
    }
}

/// Approve, revise or reject `task_id`: approving may open the review or override dialog
/// its risk asks for; revise and reject ask for a note.
pub fn decide(app: &mut App, action: Action, task_id: String) -> Vec<Effect> {
    let purpose = match action {
        Action::Approve => {
            return approval(
                app,
                critical_review::approve(app.detail.loaded.as_ref(), task_id),
            );
        }
        Action::Revise => NoteFor::Revise,
        Action::Reject => NoteFor::Reject,
        _ => return vec![],
    };
    let mut text = TextArea::default();
    text.set_placeholder_text(match purpose {
        NoteFor::Revise => "what should change? (the agent gets this note)",
        NoteFor::Reject => "why is it rejected?",
        NoteFor::SecretOverride { .. } => "why is it safe to ship?",
    });
    app.overlay = Some(Overlay::Note {
        purpose,
        task_id,
        text: Box::new(text),
    });
    vec![]
}

/// The next step of an approval: send it, or open the dialog it needs first.
fn approval(app: &mut App, next: Approval) -> Vec<Effect> {
    match next {
        Approval::Send(command) => return vec![Effect::Send(command)],
        Approval::Open(dialog) => {
            app.overlay = Some(critical_review::open(dialog, app.detail.loaded.as_ref()))
        }
    }
    vec![]
}

/// A key bound in the open dialog's context.
pub fn act(app: &mut App, action: Action) -> Vec<Effect> {
    let Some(overlay) = app.overlay.take() else {
        return vec![];
    };
    match (overlay, action) {
        (Overlay::Review(mut review), action) => match review.act(action) {
            Some(ReviewEnd::Cancelled) => {}
            Some(ReviewEnd::Confirmed(next)) => return approval(app, *next),
            Some(ReviewEnd::NotYet(why)) => {
                app.notice = Some((why, true));
                app.overlay = Some(Overlay::Review(review));
            }
            None => app.overlay = Some(Overlay::Review(review)),
        },
        (Overlay::Money(mut dialog), action) => match dialog.act(action) {
            Some(MoneyEnd::Cancelled) => {}
            Some(MoneyEnd::Send(command)) => return vec![Effect::Send(*command)],
            Some(MoneyEnd::Invalid(why)) => {
                dialog.error = Some(why);
                app.overlay = Some(Overlay::Money(dialog));
            }
            None => app.overlay = Some(Overlay::Money(dialog)),
        },
        (_, Action::Cancel) => {}
        (
            Overlay::Pick {
                mut options, sel, ..
            },
            Action::Confirm,
        ) => {
            if sel < options.len() {
                return vec![Effect::Send(options.swap_remove(sel).1)];
            }
        }
        (
            Overlay::Pick {
                title,
                options,
                sel,
            },
            action @ (Action::Next | Action::Prev),
        ) => {
            let sel = match action {
                Action::Next => (sel + 1).min(options.len().saturating_sub(1)),
                _ => sel.saturating_sub(1),
            };
            app.overlay = Some(Overlay::Pick {
                title,
                options,
                sel,
            });
        }
        (Overlay::Confirm { task_id, note }, Action::Confirm) => {
            return vec![Effect::Send(Command::Reject { task_id, note })];
        }
        (Overlay::ConfirmCommand { command, .. }, Action::Confirm) => {
            return vec![Effect::Send(*command)];
        }
        (note @ Overlay::Note { .. }, Action::Submit) => {
            app.overlay = Some(note);
            return submit_note(app);
        }
        (other, _) => app.overlay = Some(other),
    }
    vec![]
}

/// Ctrl-S in a note: the note is sent with its decision; an empty one is refused.
pub fn submit_note(app: &mut App) -> Vec<Effect> {
    let Some(Overlay::Note {
        purpose,
        task_id,
        text,
    }) = app.overlay.take()
    else {
        return vec![];
    };
    let note = text.lines().join("\n").trim().to_string();
    if note.is_empty() {
        app.notice = Some(("write a note first (what to change, or why)".into(), true));
        app.overlay = Some(Overlay::Note {
            purpose,
            task_id,
            text,
        });
        return vec![];
    }
    match purpose {
        NoteFor::Revise => vec![Effect::Send(Command::Revise { task_id, note })],
        NoteFor::SecretOverride { critical_reviewed } => vec![Effect::Send(Command::Approve {
            task_id,
            review: ApprovalReview {
                critical_reviewed,
                secret_override: Some(note),
            },
        })],
        NoteFor::Reject => {
            // Rejecting ends the task: ask once more.
            app.overlay = Some(Overlay::Confirm { task_id, note });
            vec![]
        }
    }
}

/// Keys no binding took: text for the dialog that is being written in.
pub fn key(app: &mut App, key: KeyEvent) {
    match &mut app.overlay {
        Some(Overlay::Note { text, .. }) => {
            text.input(key);
        }
        Some(Overlay::Money(dialog)) => dialog.key(key),
        _ => {}
    }
}

/// Pasted text for the dialog being written in; false when no dialog takes text.
pub fn paste(app: &mut App, text: &str) -> bool {
    match &mut app.overlay {
        Some(Overlay::Note { text: area, .. }) => {
            area.insert_str(text);
            true
        }
        Some(Overlay::Money(dialog)) => {
            dialog.paste(text);
            true
        }
        _ => false,
    }
}
