//! Approving what its risk makes hard to approve. A deliverable that scores above the
//! critical line opens its full diff here first; approval is possible only once the diff
//! was shown to its end, and then with a second key. A secret in the diff cannot be approved
//! with the plain key at all: the secret-override dialog asks for a note saying why it is
//! safe. The dialogs only collect the decision; the supervisor acts on it and refuses an
//! approval without it.

use super::block;
use super::detail::diff_line;
use super::dialogs::{NoteFor, Overlay};
use super::repo_evidence::risk_role;
use crate::console::app::App;
use crate::console::keymap::Action;
use crate::console::model::Detail;
use crate::console::theme::Role;
use crate::supervisor::{ApprovalReview, Command};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui_textarea::TextArea;
use std::cell::Cell;

/// Lines a page moves before the first frame says how tall the overlay is.
const FIRST_PAGE: usize = 20;

/// The critical-review overlay's state: where in the diff it is, and whether the end of the
/// diff has been on screen.
#[derive(Debug)]
pub struct CriticalReview {
    pub task_id: String,
    pub score: u8,
    pub reasons: Vec<String>,
    /// A secret was found too: the override note comes after the review.
    pub secret: bool,
    /// The first diff line on screen.
    pub top: usize,
    /// Diff lines in all.
    pub len: usize,
    /// Diff lines the last frame showed at once (written while drawing).
    pub page: Cell<usize>,
    /// The last diff line has been on screen (written by keys and while drawing).
    pub seen_end: Cell<bool>,
}

/// What a key in the review led to.
#[derive(Debug, PartialEq)]
pub enum ReviewEnd {
    Cancelled,
    /// Confirmed after the end was reached: approve, or ask for the secret's note.
    Confirmed(Box<Approval>),
    /// Confirmed too early; the sentence says what is left.
    NotYet(String),
}

/// The next step of an approval.
#[derive(Debug, PartialEq)]
pub enum Approval {
    Send(Command),
    /// A dialog must collect more first.
    Open(OpenDialog),
}

/// Which dialog an approval needs before it can be sent.
#[derive(Debug, PartialEq)]
pub enum OpenDialog {
    Review {
        task_id: String,
    },
    SecretOverride {
        task_id: String,
        critical_reviewed: bool,
    },
}

/// What pressing approve on `task_id` does, from the risk in its loaded evidence. Without
/// evidence (a greenfield run, or not loaded yet) it approves; the supervisor refuses an
/// approval the risk does not allow, and the console shows why.
pub fn approve(detail: Option<&Detail>, task_id: String) -> Approval {
    let risk = detail
        .filter(|d| d.task_id == task_id)
        .and_then(|d| d.repo.as_ref())
        .and_then(|r| r.risk.as_ref());
    match risk {
        Some(r) if r.needs_critical_review() => Approval::Open(OpenDialog::Review { task_id }),
        Some(r) if r.blocks_approval() => Approval::Open(OpenDialog::SecretOverride {
            task_id,
            critical_reviewed: false,
        }),
        _ => Approval::Send(Command::Approve {
            task_id,
            review: ApprovalReview::default(),
        }),
    }
}

/// The overlay a dialog step opens; `detail` is the evidence of its task.
pub fn open(dialog: OpenDialog, detail: Option<&Detail>) -> Overlay {
    match dialog {
        OpenDialog::Review { task_id } => {
            let risk = detail
                .and_then(|d| d.repo.as_ref())
                .and_then(|r| r.risk.clone())
                .unwrap_or_default();
            let len = detail.map(|d| d.diff.len()).unwrap_or(0);
            let secret = risk.blocks_approval();
            Overlay::Review(Box::new(CriticalReview {
                task_id,
                score: risk.score,
                reasons: risk.reasons,
                secret,
                top: 0,
                len,
                page: Cell::new(FIRST_PAGE),
                seen_end: Cell::new(len <= FIRST_PAGE),
            }))
        }
        OpenDialog::SecretOverride {
            task_id,
            critical_reviewed,
        } => {
            let mut text = TextArea::default();
            text.set_placeholder_text("why is this safe to ship? (kept with the approval)");
            Overlay::Note {
                purpose: NoteFor::SecretOverride { critical_reviewed },
                task_id,
                text: Box::new(text),
            }
        }
    }
}

impl CriticalReview {
    fn last_top(&self) -> usize {
        self.len.saturating_sub(self.page.get())
    }

    fn moved(&mut self, top: usize) {
        self.top = top.min(self.last_top());
        if self.top >= self.last_top() {
            self.seen_end.set(true);
        }
    }

    /// Lines below the screen.
    pub fn left(&self) -> usize {
        self.len.saturating_sub(self.top + self.page.get())
    }

    /// Applies a key of the review context.
    pub fn act(&mut self, action: Action) -> Option<ReviewEnd> {
        let page = self.page.get().max(1);
        match action {
            Action::ScrollDown | Action::Next => self.moved(self.top + 1),
            Action::ScrollUp | Action::Prev => self.moved(self.top.saturating_sub(1)),
            Action::PageDown => self.moved(self.top + page),
            Action::PageUp => self.moved(self.top.saturating_sub(page)),
            Action::Top => self.moved(0),
            Action::Cancel => return Some(ReviewEnd::Cancelled),
            Action::Confirm if self.seen_end.get() => {
                return Some(ReviewEnd::Confirmed(Box::new(if self.secret {
                    Approval::Open(OpenDialog::SecretOverride {
                        task_id: self.task_id.clone(),
                        critical_reviewed: true,
                    })
                } else {
                    Approval::Send(Command::Approve {
                        task_id: self.task_id.clone(),
                        review: ApprovalReview {
                            critical_reviewed: true,
                            secret_override: None,
                        },
                    })
                })));
            }
            Action::Confirm => {
                return Some(ReviewEnd::NotYet(format!(
                    "read the whole diff before approving: {} lines are still below (page down to the end)",
                    self.left()
                )));
            }
            _ => {}
        }
        None
    }
}

pub fn draw(frame: &mut Frame, app: &App, review: &CriticalReview, area: Rect) {
    let t = &app.theme;
    let box_area = area.inner(Margin {
        horizontal: 2,
        vertical: 1,
    });
    frame.render_widget(Clear, box_area);
    let title = format!(
        "Critical review {} · risk {}/100",
        review.task_id, review.score
    );
    let b = block(app, &title);
    let inner = b.inner(box_area);
    frame.render_widget(b, box_area);
    let [why, body, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                "Risk above 70: read the whole diff, then approve with a second key.",
                t.fg(Role::Warn),
            )),
            Line::from(Span::styled(
                review.reasons.join("; "),
                t.fg(risk_role(review.score)),
            )),
        ]),
        why,
    );
    let page = body.height as usize;
    review.page.set(page);
    let top = review.top.min(review.len.saturating_sub(page));
    let end = (top + page).min(review.len);
    if end >= review.len {
        review.seen_end.set(true);
    }
    let lines: Vec<Line> = match app
        .detail
        .loaded
        .as_ref()
        .filter(|d| d.task_id == review.task_id)
    {
        Some(d) => {
            // The loop asks the highlighter for the lines on screen, as in the Diff pane.
            app.detail.diff_view.set(Some((top, end)));
            (top..end.min(d.diff.len()))
                .map(|i| diff_line(app, i, &d.diff[i]))
                .collect()
        }
        None => vec![Line::from(Span::styled(
            "loading the diff…",
            t.fg(Role::Muted),
        ))],
    };
    frame.render_widget(Paragraph::new(lines), body);
    let position = format!(
        "lines {}–{} of {}",
        (top + 1).min(review.len),
        end,
        review.len
    );
    let state = if review.seen_end.get() {
        Span::styled("  end reached: approve now", t.fg(Role::Ok))
    } else {
        Span::styled(
            format!("  {} lines below: page to the end", review.len - end),
            t.fg(Role::Warn),
        )
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(position, t.fg(Role::Muted)),
            state,
        ])),
        status,
    );
}
