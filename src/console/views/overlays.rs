//! Overlays: help (from the keymap table), the note dialog for revise and reject, and the
//! confirmation before a reject. Dialogs only collect a decision; the app sends it.

use super::block;
use super::dialogs::{NoteFor, Overlay};
use crate::console::app::App;
use crate::console::theme::Role;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => {
            let groups = app.keymap.help();
            let mut lines = Vec::new();
            for (ctx, binds) in groups {
                lines.push(Line::from(Span::styled(ctx.name(), t.title())));
                let mut row = Vec::new();
                for (key, help) in binds {
                    row.push(Span::styled(format!(" {key}"), t.fg(Role::Accent)));
                    row.push(Span::styled(format!(" {help}  "), t.fg(Role::Text)));
                }
                lines.push(Line::from(row));
            }
            let box_area = centered(
                area,
                area.width.saturating_sub(4).min(110),
                (lines.len() as u16 + 2).min(area.height),
            );
            frame.render_widget(Clear, box_area);
            let b = block(app, "Keys");
            let inner = b.inner(box_area);
            frame.render_widget(b, box_area);
            frame.render_widget(
                Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
                inner,
            );
        }
        Some(Overlay::Money(dialog)) => super::money_dialog::draw(frame, app, dialog, area),
        Some(Overlay::ConfirmCommand {
            title,
            lines,
            command: _,
        }) => {
            let box_area = centered(area, 72.min(area.width), lines.len() as u16 + 3);
            frame.render_widget(Clear, box_area);
            let b = block(app, title);
            let inner = b.inner(box_area);
            frame.render_widget(b, box_area);
            let mut text: Vec<Line> = lines
                .iter()
                .map(|l| Line::from(Span::styled(l.clone(), t.fg(Role::Warn))))
                .collect();
            text.push(Line::from(vec![
                Span::styled(" y", t.fg(Role::Accent)),
                Span::styled(" yes   ", t.fg(Role::Text)),
                Span::styled("n", t.fg(Role::Accent)),
                Span::styled(" no", t.fg(Role::Text)),
            ]));
            frame.render_widget(
                Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: false }),
                inner,
            );
        }
        Some(Overlay::Review(review)) => super::critical_review::draw(frame, app, review, area),
        Some(Overlay::Pick {
            title,
            options,
            sel,
        }) => {
            let box_area = centered(area, 48.min(area.width), options.len() as u16 + 3);
            frame.render_widget(Clear, box_area);
            let b = block(app, title);
            let inner = b.inner(box_area);
            frame.render_widget(b, box_area);
            let mut text: Vec<Line> = options
                .iter()
                .enumerate()
                .map(|(i, (label, _))| {
                    let style = if i == *sel {
                        t.selected()
                    } else {
                        t.fg(Role::Text)
                    };
                    Line::from(Span::styled(format!(" {label}"), style))
                })
                .collect();
            if options.is_empty() {
                text.push(Line::from(Span::styled(
                    " the registry has no servers",
                    t.fg(Role::Muted),
                )));
            }
            text.push(Line::from(Span::styled(
                " enter start   esc close",
                t.fg(Role::Muted),
            )));
            frame.render_widget(Paragraph::new(text), inner);
        }
        Some(Overlay::Note {
            purpose: NoteFor::SecretOverride { critical_reviewed },
            task_id,
            text,
        }) => super::secret_override::draw(frame, app, task_id, *critical_reviewed, text, area),
        Some(Overlay::Note {
            purpose,
            task_id,
            text,
        }) => {
            let title = match purpose {
                NoteFor::Revise => format!("Revise {task_id}: a note for the agent"),
                _ => format!("Reject {task_id}: why?"),
            };
            let box_area = centered(area, area.width.saturating_sub(6).min(90), 10);
            frame.render_widget(Clear, box_area);
            let b = block(app, &title);
            let inner = b.inner(box_area);
            frame.render_widget(b, box_area);
            let [edit, hint] =
                Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
            frame.render_widget(text.as_ref(), edit);
            // The keys come from the keymap table, as the footer's do.
            let mut keys: Vec<String> = app
                .keymap
                .footer(&[crate::console::keymap::Context::Note])
                .into_iter()
                .map(|(key, help)| format!("{key} {help}"))
                .collect();
            keys.push("Enter starts a new line".into());
            frame.render_widget(
                Paragraph::new(Span::styled(keys.join(" · "), t.fg(Role::Muted))),
                hint,
            );
        }
        Some(Overlay::Confirm { task_id, note }) => {
            let box_area = centered(area, 64.min(area.width), 6);
            frame.render_widget(Clear, box_area);
            let b = block(app, "Reject?");
            let inner = b.inner(box_area);
            frame.render_widget(b, box_area);
            let lines = vec![
                Line::from(Span::styled(
                    format!("Reject {task_id}? This ends the task; nothing is delivered."),
                    t.fg(Role::Warn),
                )),
                Line::from(Span::styled(format!("reason: {note}"), t.fg(Role::Muted))),
                Line::from(vec![
                    Span::styled(" y", t.fg(Role::Accent)),
                    Span::styled(" reject   ", t.fg(Role::Text)),
                    Span::styled("n", t.fg(Role::Accent)),
                    Span::styled(" keep it", t.fg(Role::Text)),
                ]),
            ];
            frame.render_widget(Paragraph::new(lines), inner);
        }
    }
}
