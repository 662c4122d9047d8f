//! The Runs view: live and recent runs.

use super::{block, elapsed, run_cost, state_role, truncate};
use crate::console::app::App;
use crate::console::theme::Role;
use crate::domain::TaskStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let rows = app.visible_runs();
    let mut title = format!("Runs · {} · sort: {}", rows.len(), app.sort.name());
    if app.filter_editing || !app.filter.is_empty() {
        title.push_str(&format!(
            " · filter: {}{}",
            app.filter,
            if app.filter_editing { "▏" } else { "" }
        ));
    }
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if rows.is_empty() {
        let text = if app.rows.is_empty() {
            "No runs yet. Press n to launch a task."
        } else {
            "No run matches the filter. Press / and Esc to clear it."
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(text, t.fg(Role::Muted)))),
            inner,
        );
        return;
    }
    let wide = inner.width >= 120;
    let mut header = vec!["", "TASK", "CLIENT", "TITLE"];
    if wide {
        header.push("AGENT");
    }
    header.extend(["STATE", "IT", "SCORE"]);
    if wide {
        header.push("TOKENS");
    }
    header.extend(["COST", "TIME"]);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Length(if wide { 12 } else { 8 }),
        Constraint::Fill(1),
    ];
    if wide {
        widths.push(Constraint::Length(11));
    }
    widths.extend([
        Constraint::Length(if inner.width >= 100 { 20 } else { 11 }),
        Constraint::Length(2),
        Constraint::Length(5),
    ]);
    if wide {
        widths.push(Constraint::Length(8));
    }
    widths.extend([Constraint::Length(10), Constraint::Length(6)]);

    let body_height = inner.height.saturating_sub(1) as usize;
    let sel = app.runs_sel.min(rows.len() - 1);
    let first = sel.saturating_sub(body_height.saturating_sub(1));
    app.list_area.set(Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    });
    let table_rows: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(body_height)
        .map(|(i, r)| {
            let waiting = r.status == TaskStatus::AwaitingApproval;
            let state = r.state_label(inner.width >= 100);
            let mut cells = vec![
                Cell::from(Span::styled(
                    if waiting { "●" } else { " " },
                    t.fg(Role::Accent),
                )),
                Cell::from(r.task_id.clone()),
                Cell::from(truncate(&r.client_id, if wide { 12 } else { 8 })),
                Cell::from(r.title.clone()),
            ];
            if wide {
                cells.push(Cell::from(r.agent.clone()));
            }
            cells.push(Cell::from(Span::styled(state, t.fg(state_role(r.status)))));
            cells.push(Cell::from(r.iteration.to_string()));
            cells.push(Cell::from(
                r.quality
                    .map(|q| format!("{q:.1}"))
                    .unwrap_or_else(|| "-".into()),
            ));
            if wide {
                cells.push(Cell::from(r.tokens.to_string()));
            }
            cells.push(Cell::from(Span::styled(
                run_cost(r),
                t.fg(if r.simulated {
                    Role::Simulated
                } else {
                    Role::Text
                }),
            )));
            cells.push(Cell::from(elapsed(r.elapsed_secs(app.now_ms))));
            let row = Row::new(cells).style(t.fg(Role::Text));
            if i == sel {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(t.fg(Role::Muted)))
        .column_spacing(1);
    frame.render_widget(table, inner);
}
