//! Drawing the Batch view's three stages: the manifest field with the batches launched
//! before, the forecast, and the scoreboard. Only the rows on screen are built, so a batch
//! of hundreds of apps draws as fast as one of twenty.

use super::{BatchView, Board, LoadedForecast, Stage};
use crate::console::app::App;
use crate::console::model::RunRow;
use crate::console::theme::{Role, Theme};
use crate::console::views::{block, elapsed, money, run_cost, state_role, truncate};
use crate::domain::TaskStatus;
use crate::money::{Micros, format_usd};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use std::collections::HashMap;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let view = &app.batch;
    match view.stage {
        Stage::Open => draw_open(frame, app, view, area),
        Stage::Forecast => draw_forecast(frame, app, view, area),
        Stage::Board => draw_board(frame, app, view, area),
    }
}

fn text(frame: &mut Frame, area: Rect, line: Span<'_>) {
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), area);
}

fn draw_open(frame: &mut Frame, app: &App, view: &BatchView, area: Rect) {
    let t = &app.theme;
    let outer = block(app, "Batch · open a manifest");
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [field, hint, list] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(1),
    ])
    .areas(inner);
    let path = if view.path.is_empty() {
        Span::styled("e.g. examples/rork-batch.toml", t.fg(Role::Muted))
    } else {
        Span::styled(view.path.clone(), t.fg(Role::Text))
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" manifest: ", t.fg(Role::Accent)),
            path,
            Span::styled("▏", t.fg(Role::Accent)),
        ])),
        field,
    );
    let hint_text = if view.completions.is_empty() {
        " Tab completes the path · Enter shows the forecast; with the field empty, Enter opens \
         the batch selected below"
            .to_string()
    } else {
        format!(" {}", view.completions.join("  "))
    };
    text(frame, hint, Span::styled(hint_text, t.fg(Role::Muted)));
    let batches = match &view.batches {
        None => {
            return text(
                frame,
                list,
                Span::styled(" Loading the batches…", t.fg(Role::Muted)),
            );
        }
        Some(Err(e)) => {
            return text(
                frame,
                list,
                Span::styled(format!(" {e}"), t.fg(Role::Error)),
            );
        }
        Some(Ok(b)) if b.is_empty() => {
            return text(
                frame,
                list,
                Span::styled(
                    " No batch launched yet. Write a manifest's path above (examples/rork-batch.toml \
                     has 21 Expo apps).",
                    t.fg(Role::Muted),
                ),
            );
        }
        Some(Ok(b)) => b,
    };
    let wide = list.width >= 100;
    let body = list.height.saturating_sub(1) as usize;
    let sel = view.list_sel.min(batches.len() - 1);
    let first = sel.saturating_sub(body.saturating_sub(1));
    app.list_area.set(Rect {
        y: list.y + 1,
        height: list.height.saturating_sub(1),
        ..list
    });
    let rows: Vec<Row> = batches
        .iter()
        .enumerate()
        .skip(first)
        .take(body)
        .map(|(i, b)| {
            let mut cells = vec![
                Cell::from(b.id.clone()),
                Cell::from(b.name.clone()),
                Cell::from(truncate(&b.client_id, 12)),
                Cell::from(b.status.clone()),
            ];
            if wide {
                cells.push(Cell::from(b.concurrency.to_string()));
                cells.push(Cell::from(crate::time::format_ms(b.created_at)));
            }
            let row = Row::new(cells).style(t.fg(Role::Text));
            if i == sel && view.path.is_empty() {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    let mut header = vec!["BATCH", "NAME", "CLIENT", "STATUS"];
    let mut widths = vec![
        Constraint::Length(8),
        Constraint::Fill(1),
        Constraint::Length(12),
        Constraint::Length(10),
    ];
    if wide {
        header.extend(["AT ONCE", "LAUNCHED"]);
        widths.extend([Constraint::Length(7), Constraint::Length(20)]);
    }
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .column_spacing(1),
        list,
    );
}

fn draw_forecast(frame: &mut Frame, app: &App, view: &BatchView, area: Rect) {
    let t = &app.theme;
    let f = match &view.forecast {
        None => {
            let outer = block(app, "Batch · forecast");
            let inner = outer.inner(area);
            frame.render_widget(outer, area);
            return text(
                frame,
                inner,
                Span::styled(" Reading the manifest…", t.fg(Role::Muted)),
            );
        }
        Some(Err(e)) => {
            let outer = block(app, "Batch · forecast");
            let inner = outer.inner(area);
            frame.render_widget(outer, area);
            return text(
                frame,
                inner,
                Span::styled(format!(" {e}"), t.fg(Role::Error)),
            );
        }
        Some(Ok(f)) => f,
    };
    let title = format!(
        "Batch · {} for {} · {} apps · {} at once · {} model",
        f.name,
        f.client_id,
        f.forecast.apps.len(),
        f.concurrency,
        f.mode
    );
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let summary = forecast_summary(t, f);
    let [table, foot] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(summary.len() as u16)])
            .areas(inner);
    let wide = table.width >= 100;
    let usd = format_usd;
    // The header and the total take two lines; j/k scroll the apps.
    let room = table.height.saturating_sub(2) as usize;
    let top = view
        .forecast_top
        .min(f.forecast.apps.len().saturating_sub(room));
    let mut rows: Vec<Row> = f
        .forecast
        .apps
        .iter()
        .zip(&f.stacks)
        .skip(top)
        .take(room)
        .map(|(a, stack)| {
            let mut cells = vec![Cell::from(a.name.clone())];
            if wide {
                cells.push(Cell::from(stack.clone()));
            }
            cells.extend([
                Cell::from(usd(a.low_micros)),
                Cell::from(usd(a.expected_micros)),
                Cell::from(usd(a.high_micros)),
            ]);
            Row::new(cells).style(t.fg(Role::Text))
        })
        .collect();
    let hidden = f.forecast.apps.len().saturating_sub(rows.len());
    let mut total = vec![Cell::from(if hidden > 0 {
        format!("TOTAL ({hidden} more apps: j/k scroll)")
    } else {
        "TOTAL".into()
    })];
    if wide {
        total.push(Cell::from(""));
    }
    total.extend([
        Cell::from(usd(f.forecast.low_micros)),
        Cell::from(usd(f.forecast.expected_micros)),
        Cell::from(usd(f.forecast.high_micros)),
    ]);
    rows.push(Row::new(total).style(t.title()));
    let mut header = vec!["APP"];
    let mut widths = vec![Constraint::Fill(1)];
    if wide {
        header.push("STACK");
        widths.push(Constraint::Length(14));
    }
    header.extend(["LOW", "EXPECTED", "HIGH"]);
    widths.extend([Constraint::Length(13); 3]);
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .column_spacing(1),
        table,
    );
    frame.render_widget(Paragraph::new(summary).wrap(Wrap { trim: false }), foot);
}

fn forecast_summary<'a>(t: &Theme, f: &LoadedForecast) -> Vec<Line<'a>> {
    let fc = &f.forecast;
    let mut lines = vec![
        Line::from(Span::styled(
            format!(" basis: {}", fc.basis),
            t.fg(Role::Muted),
        )),
        Line::from(vec![
            Span::styled(" left in the client's month ", t.fg(Role::Muted)),
            Span::styled(
                format_usd(fc.remaining_month_micros.max(0)),
                t.fg(Role::Text),
            ),
            Span::styled(" · batch cap ", t.fg(Role::Muted)),
            Span::styled(
                fc.batch_cap_micros
                    .map(format_usd)
                    .unwrap_or_else(|| "none".into()),
                t.fg(Role::Text),
            ),
        ]),
    ];
    lines.push(match fc.over_budget() {
        Some(why) => Line::from(Span::styled(
            format!(" over budget: {why}; launching needs a second confirmation"),
            t.fg(Role::GaugeOver),
        )),
        None => Line::from(Span::styled(
            " fits the client's month and the batch cap; L launches (after a confirmation)",
            t.fg(Role::Ok),
        )),
    });
    lines
}

/// The scoreboard's totals over the apps' live rows.
struct Totals {
    running: usize,
    pending: usize,
    waiting: usize,
    delivered: usize,
    failed: usize,
    ended: usize,
    cost: Micros,
    simulated: bool,
}

fn totals(board: &Board, rows: &HashMap<&str, &RunRow>) -> Totals {
    let mut t = Totals {
        running: 0,
        pending: 0,
        waiting: 0,
        delivered: 0,
        failed: 0,
        ended: 0,
        cost: 0,
        simulated: false,
    };
    for a in &board.apps {
        let Some(r) = rows.get(a.task_id.as_str()) else {
            t.pending += 1;
            continue;
        };
        t.cost += r.cost;
        t.simulated |= r.simulated;
        match r.status {
            TaskStatus::AwaitingApproval => t.waiting += 1,
            TaskStatus::Delivered => t.delivered += 1,
            TaskStatus::Failed | TaskStatus::Rejected | TaskStatus::Cancelled => t.failed += 1,
            TaskStatus::Pending | TaskStatus::Paused | TaskStatus::Interrupted => t.pending += 1,
            _ => t.running += 1,
        }
    }
    t.ended = t.waiting + t.delivered + t.failed;
    t
}

fn draw_board(frame: &mut Frame, app: &App, view: &BatchView, area: Rect) {
    let t = &app.theme;
    let board = match &view.board {
        None => {
            let outer = block(app, "Batch");
            let inner = outer.inner(area);
            frame.render_widget(outer, area);
            return text(
                frame,
                inner,
                Span::styled(" Loading the batch…", t.fg(Role::Muted)),
            );
        }
        Some(Err(e)) => {
            let outer = block(app, "Batch");
            let inner = outer.inner(area);
            frame.render_widget(outer, area);
            return text(
                frame,
                inner,
                Span::styled(format!(" {e}"), t.fg(Role::Error)),
            );
        }
        Some(Ok(b)) => b,
    };
    let b = &board.batch;
    let title = format!(
        "Batch {} · {} · {} · {} · {} at once",
        b.id, b.name, b.client_id, b.status, b.concurrency
    );
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    // One lookup table per frame: O(apps), never a scan of every row per app.
    let rows: HashMap<&str, &RunRow> = app.rows.iter().map(|r| (r.task_id.as_str(), r)).collect();
    let tot = totals(board, &rows);
    let [head, table] = Layout::vertical([Constraint::Length(2), Constraint::Min(2)]).areas(inner);
    frame.render_widget(Paragraph::new(board_head(t, board, &tot, app.now_ms)), head);
    let wide = table.width >= 120;
    let body = table.height.saturating_sub(1) as usize;
    let sel = view.sel.min(board.apps.len().saturating_sub(1));
    let first = sel.saturating_sub(body.saturating_sub(1));
    app.list_area.set(Rect {
        y: table.y + 1,
        height: table.height.saturating_sub(1),
        ..table
    });
    let lines: Vec<Row> = board
        .apps
        .iter()
        .enumerate()
        .skip(first)
        .take(body)
        .map(|(i, a)| {
            let r = rows.get(a.task_id.as_str());
            let mut cells = vec![Cell::from(a.app.clone())];
            if wide {
                cells.push(Cell::from(a.task_id.clone()));
            }
            match r {
                Some(r) => {
                    cells.push(Cell::from(Span::styled(
                        r.state_label(false),
                        t.fg(state_role(r.status)),
                    )));
                    cells.push(Cell::from(r.iteration.to_string()));
                    cells.push(Cell::from(
                        r.quality
                            .map(|q| format!("{q:.1}"))
                            .unwrap_or_else(|| "-".into()),
                    ));
                    cells.push(Cell::from(Span::styled(
                        run_cost(r),
                        t.fg(if r.simulated {
                            Role::Simulated
                        } else {
                            Role::Text
                        }),
                    )));
                }
                None => cells.extend(["pending", "0", "-", "-"].map(Cell::from)),
            }
            if wide {
                cells.push(Cell::from(
                    a.expected_micros
                        .map(format_usd)
                        .unwrap_or_else(|| "-".into()),
                ));
            }
            cells.push(Cell::from(elapsed(
                r.and_then(|r| r.elapsed_secs(app.now_ms)),
            )));
            if wide {
                let result = r
                    .map(|r| {
                        r.result
                            .clone()
                            .or_else(|| r.reason.clone())
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                cells.push(Cell::from(truncate(&result, 40)));
            }
            let row = Row::new(cells).style(t.fg(Role::Text));
            if i == sel {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    let mut header = vec!["APP"];
    let mut widths = vec![Constraint::Fill(1)];
    if wide {
        header.push("TASK");
        widths.push(Constraint::Length(7));
    }
    header.extend(["STATE", "IT", "SCORE", "COST"]);
    widths.extend([
        Constraint::Length(11),
        Constraint::Length(2),
        Constraint::Length(5),
        Constraint::Length(11),
    ]);
    if wide {
        header.push("FORECAST");
        widths.push(Constraint::Length(11));
    }
    header.push("TIME");
    widths.push(Constraint::Length(6));
    if wide {
        header.push("RESULT");
        widths.push(Constraint::Length(40));
    }
    frame.render_widget(
        Table::new(lines, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .column_spacing(1),
        table,
    );
}

fn board_head<'a>(t: &Theme, board: &Board, tot: &Totals, now_ms: i64) -> Vec<Line<'a>> {
    let n = board.apps.len();
    let counts = Line::from(vec![
        Span::styled(format!(" {n} apps: "), t.fg(Role::Text)),
        Span::styled(format!("{} running", tot.running), t.fg(Role::Text)),
        Span::styled(format!(" · {} pending", tot.pending), t.fg(Role::Muted)),
        Span::styled(
            format!(" · {} awaiting approval", tot.waiting),
            t.fg(Role::Accent),
        ),
        Span::styled(format!(" · {} delivered", tot.delivered), t.fg(Role::Ok)),
        Span::styled(
            format!(" · {} failed", tot.failed),
            t.fg(if tot.failed > 0 {
                Role::Error
            } else {
                Role::Muted
            }),
        ),
    ]);
    let end = board.batch.finished_at.unwrap_or(now_ms);
    let hours = (end - board.batch.created_at).max(1) as f64 / 3_600_000.0;
    let per_hour = tot.ended as f64 / hours;
    let left = n.saturating_sub(tot.ended);
    let eta = if left == 0 {
        "done".to_string()
    } else if board.batch.status != "running" {
        "-".to_string()
    } else if per_hour > 0.0 {
        elapsed(Some((left as f64 / per_hour * 3600.0) as i64))
    } else {
        "after the first app ends".into()
    };
    let mut money_line = vec![
        Span::styled(" cost ", t.fg(Role::Muted)),
        Span::styled(money(tot.cost, tot.simulated), t.fg(Role::Text)),
    ];
    if let Some(f) = &board.forecast {
        let pct = if f.expected_micros > 0 {
            format!(" ({}%)", tot.cost as i128 * 100 / f.expected_micros as i128)
        } else {
            String::new()
        };
        money_line.push(Span::styled(
            format!(
                " vs forecast {} (low {}, high {}){pct}",
                format_usd(f.expected_micros),
                format_usd(f.low_micros),
                format_usd(f.high_micros)
            ),
            t.fg(Role::Muted),
        ));
    }
    money_line.push(Span::styled(
        format!(" · {per_hour:.1} apps/h · ETA {eta}"),
        t.fg(Role::Muted),
    ));
    vec![counts, Line::from(money_line)]
}
