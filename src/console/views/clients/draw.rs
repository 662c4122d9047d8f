//! Drawing the Clients view: the list of clients with their month, then the selected
//! client's month in full. At 80×24 the list keeps the figures that decide (share of the
//! cap, spend, projection) and the detail drops spend by model.

use super::ClientsView;
use crate::budgets::{ClientMonth, WARN_PERCENT};
use crate::console::app::App;
use crate::console::theme::{Role, Theme};
use crate::console::views::{block, money, state_role, truncate};
use crate::money::{Micros, format_usd};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let view = &app.clients;
    let month = view
        .list()
        .first()
        .map(|m| m.month.clone())
        .unwrap_or_else(|| crate::time::month_of(app.now_ms));
    let title = format!("Clients · {month}");
    let outer = block(app, &title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let months = match &view.months {
        None => return muted(frame, t, inner, "Loading the clients' month…"),
        Some(Err(e)) => {
            let line = Span::styled(
                format!("could not load the clients: {e}"),
                t.fg(Role::Error),
            );
            frame.render_widget(Paragraph::new(line), inner);
            return;
        }
        Some(Ok(m)) if m.is_empty() => {
            return muted(
                frame,
                t,
                inner,
                "No client yet. Add one with `ecca clients add ID --name NAME --budget-usd 100`; \
                 its month appears here.",
            );
        }
        Some(Ok(m)) => m,
    };
    let list_h = (months.len() as u16 + 1).clamp(2, (inner.height / 3).max(3));
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(3)]).areas(inner);
    draw_list(frame, app, view, months, list);
    if let Some(m) = view.selected() {
        draw_client(frame, app, view, m, detail);
    }
}

fn muted(frame: &mut Frame, t: &Theme, area: Rect, text: &str) {
    frame.render_widget(
        Paragraph::new(Span::styled(text.to_string(), t.fg(Role::Muted)))
            .wrap(ratatui::widgets::Wrap { trim: false }),
        area,
    );
}

/// `!` past the warning share, `!!` at the cap.
fn mark(view: &ClientsView, m: &ClientMonth) -> (&'static str, Role) {
    let pct = view.percent(m);
    if pct >= 100 || !m.paused.is_empty() {
        ("!!", Role::GaugeOver)
    } else if pct >= WARN_PERCENT {
        ("! ", Role::GaugeWarn)
    } else {
        ("  ", Role::Text)
    }
}

fn gauge<'a>(
    t: &Theme,
    real: Micros,
    simulated: Micros,
    cap: Micros,
    width: usize,
) -> Vec<Span<'a>> {
    let part = |v: Micros| {
        if cap <= 0 {
            return width;
        }
        ((v.max(0) as i128 * width as i128) / cap as i128).min(width as i128) as usize
    };
    let real_w = part(real);
    let sim_w = part(real + simulated).saturating_sub(real_w);
    let pct = if cap > 0 {
        (real + simulated) as f64 * 100.0 / cap as f64
    } else {
        100.0
    };
    let role = if pct >= 100.0 {
        Role::GaugeOver
    } else if pct >= WARN_PERCENT as f64 {
        Role::GaugeWarn
    } else {
        Role::Gauge
    };
    vec![
        Span::styled("█".repeat(real_w), t.fg(role)),
        Span::styled("▓".repeat(sim_w), t.fg(Role::Simulated)),
        Span::styled(
            "░".repeat(width.saturating_sub(real_w + sim_w)),
            t.fg(Role::Border),
        ),
    ]
}

fn draw_list(frame: &mut Frame, app: &App, view: &ClientsView, months: &[ClientMonth], area: Rect) {
    let t = &app.theme;
    let wide = area.width >= 120;
    let mut header = vec!["", "CLIENT", "USED", "CAP", "REAL SPEND"];
    header.push(if wide { "SIMULATED*" } else { "SIM*" });
    let mut widths = vec![
        Constraint::Length(2),
        Constraint::Length(if wide { 14 } else { 10 }),
        Constraint::Length(5),
        Constraint::Length(if wide { 14 } else { 11 }),
        Constraint::Length(if wide { 14 } else { 11 }),
        Constraint::Length(if wide { 14 } else { 11 }),
    ];
    if wide {
        header.extend(["HELD", "BURN/DAY", "PROJECTED", "CAP ON", "MARGIN"]);
        widths.extend([
            Constraint::Length(11),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(14),
        ]);
    }
    let body = area.height.saturating_sub(1) as usize;
    let sel = view.sel.min(months.len().saturating_sub(1));
    let first = sel.saturating_sub(body.saturating_sub(1));
    if !view.on_tasks {
        app.list_area.set(Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        });
    }
    let usd = |v: Micros| format_usd(v);
    let rows: Vec<Row> = months
        .iter()
        .enumerate()
        .skip(first)
        .take(body)
        .map(|(i, m)| {
            let (flag, role) = mark(view, m);
            let mut cells = vec![
                Cell::from(Span::styled(flag, t.fg(role))),
                Cell::from(truncate(&m.client_id, if wide { 14 } else { 10 })),
                Cell::from(Span::styled(format!("{}%", view.percent(m)), t.fg(role))),
                Cell::from(usd(m.cap_micros)),
                Cell::from(usd(m.spent_real_micros)),
                Cell::from(Span::styled(
                    money(m.spent_simulated_micros, true),
                    t.fg(Role::Simulated),
                )),
            ];
            if wide {
                cells.extend([
                    Cell::from(usd(m.reserved_micros)),
                    Cell::from(usd(m.burn_per_day_micros)),
                    Cell::from(usd(m.projected_month_micros)),
                    Cell::from(m.cap_reached_on.clone().unwrap_or_else(|| "-".into())),
                    Cell::from(m.margin_micros.map(usd).unwrap_or_else(|| "-".into())),
                ]);
            }
            let row = Row::new(cells).style(t.fg(Role::Text));
            if i == sel && !view.on_tasks {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .column_spacing(1),
        area,
    );
}

fn draw_client(frame: &mut Frame, app: &App, view: &ClientsView, m: &ClientMonth, area: Rect) {
    let t = &app.theme;
    let title = format!("{} · {}", m.client_id, m.name);
    let b = block(app, &title);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let lines = summary_lines(t, view, m, inner.width);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), top);
    if bottom.width >= 120 {
        let [tasks, _, models] = Layout::horizontal([
            Constraint::Min(60),
            Constraint::Length(2),
            Constraint::Length(58),
        ])
        .areas(bottom);
        draw_tasks(frame, app, view, m, tasks);
        draw_models(frame, t, m, models);
    } else {
        draw_tasks(frame, app, view, m, bottom);
    }
}

fn summary_lines<'a>(t: &Theme, view: &ClientsView, m: &ClientMonth, width: u16) -> Vec<Line<'a>> {
    let usd = format_usd;
    let bar = if width >= 120 { 40 } else { 20 };
    let mut gauge_line = vec![Span::styled(" cap [", t.fg(Role::Muted))];
    gauge_line.extend(gauge(
        t,
        m.spent_real_micros,
        m.spent_simulated_micros,
        m.cap_micros,
        bar,
    ));
    gauge_line.push(Span::styled("] ", t.fg(Role::Muted)));
    gauge_line.push(Span::styled(
        format!("{}% of {}", view.percent(m), usd(m.cap_micros)),
        t.fg(Role::Text),
    ));
    let mut lines = vec![Line::from(gauge_line)];
    let cap_on = match &m.cap_reached_on {
        Some(d) => Span::styled(format!("on {d}"), t.fg(Role::Warn)),
        None => Span::styled("not this month", t.fg(Role::Text)),
    };
    let narrow = width < 120;
    let spend = vec![
        Span::styled(" real ", t.fg(Role::Muted)),
        Span::styled(usd(m.spent_real_micros), t.fg(Role::Text)),
        Span::styled(" · simulated ", t.fg(Role::Muted)),
        Span::styled(money(m.spent_simulated_micros, true), t.fg(Role::Simulated)),
        Span::styled(
            if narrow {
                " · held "
            } else {
                " · held by calls in flight "
            },
            t.fg(Role::Muted),
        ),
        Span::styled(usd(m.reserved_micros), t.fg(Role::Text)),
    ];
    let burn = if narrow {
        vec![
            Span::styled(" burn ", t.fg(Role::Muted)),
            Span::styled(
                format!("{}/day", usd(m.burn_per_day_micros)),
                t.fg(Role::Text),
            ),
            Span::styled(" · month end ", t.fg(Role::Muted)),
            Span::styled(usd(m.projected_month_micros), t.fg(Role::Text)),
            Span::styled(" · cap ", t.fg(Role::Muted)),
            cap_on,
        ]
    } else {
        vec![
            Span::styled(" burn ", t.fg(Role::Muted)),
            Span::styled(
                format!("{}/day", usd(m.burn_per_day_micros)),
                t.fg(Role::Text),
            ),
            Span::styled(
                " (last 7 days) · month's end at this rate ",
                t.fg(Role::Muted),
            ),
            Span::styled(usd(m.projected_month_micros), t.fg(Role::Text)),
            Span::styled(" · cap reached ", t.fg(Role::Muted)),
            cap_on,
        ]
    };
    let mut money_line = vec![
        Span::styled(" revenue ", t.fg(Role::Muted)),
        Span::styled(
            m.revenue_micros
                .map(usd)
                .unwrap_or_else(|| "none recorded".into()),
            t.fg(Role::Text),
        ),
        Span::styled(" · margin ", t.fg(Role::Muted)),
        Span::styled(
            m.margin_micros.map(usd).unwrap_or_else(|| "-".into()),
            t.fg(if m.margin_micros.is_some_and(|v| v < 0) {
                Role::Error
            } else {
                Role::Text
            }),
        ),
    ];
    if !narrow {
        money_line.push(Span::styled(
            " · per approved deliverable ",
            t.fg(Role::Muted),
        ));
        money_line.push(Span::styled(
            m.cost_per_approved_micros
                .map(usd)
                .unwrap_or_else(|| "-".into()),
            t.fg(Role::Text),
        ));
    }
    lines.push(Line::from(spend));
    lines.push(Line::from(burn));
    lines.push(Line::from(money_line));
    let pct = view.percent(m);
    if pct >= 100 || !m.paused.is_empty() {
        lines.push(Line::from(Span::styled(
            if narrow {
                format!(
                    " at its cap: {} run(s) paused · m raises it",
                    m.paused.len()
                )
            } else {
                format!(
                    " at its cap: calls that would pass it are refused; {} run(s) paused. m \
                     raises the cap (paused runs go on), R resumes them",
                    m.paused.len()
                )
            },
            t.fg(Role::GaugeOver),
        )));
    } else if pct >= WARN_PERCENT {
        lines.push(Line::from(Span::styled(
            format!(" past {WARN_PERCENT}% of its month: runs pause at the cap"),
            t.fg(Role::GaugeWarn),
        )));
    }
    for p in &m.paused {
        lines.push(Line::from(vec![
            Span::styled(format!("  paused {} ", p.task_id), t.fg(Role::Warn)),
            Span::styled(p.reason.clone(), t.fg(Role::Muted)),
        ]));
    }
    lines
}

fn draw_tasks(frame: &mut Frame, app: &App, view: &ClientsView, m: &ClientMonth, area: Rect) {
    let t = &app.theme;
    if m.tasks.is_empty() {
        return muted(frame, t, area, " No task this month.");
    }
    let wide = area.width >= 90;
    let mut header = vec!["TASK", "TITLE", "STATUS", "ATT", "COST"];
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Fill(1),
        Constraint::Length(17),
        Constraint::Length(3),
        Constraint::Length(12),
    ];
    if wide {
        header.extend(["BUDGET", "PRICE"]);
        widths.extend([Constraint::Length(11), Constraint::Length(11)]);
    }
    let body = area.height.saturating_sub(1) as usize;
    let sel = view.task_sel.min(m.tasks.len() - 1);
    let first = if view.on_tasks {
        sel.saturating_sub(body.saturating_sub(1))
    } else {
        0
    };
    if view.on_tasks {
        app.list_area.set(Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        });
    }
    let rows: Vec<Row> = m
        .tasks
        .iter()
        .enumerate()
        .skip(first)
        .take(body)
        .map(|(i, task)| {
            let cost_role = if task.over_price_share {
                Role::Warn
            } else if task.simulated {
                Role::Simulated
            } else {
                Role::Text
            };
            let mut cells = vec![
                Cell::from(task.task_id.clone()),
                Cell::from(task.title.clone()),
                Cell::from(Span::styled(
                    task.status.to_string(),
                    t.fg(state_role(task.status)),
                )),
                Cell::from(task.attempts.to_string()),
                Cell::from(Span::styled(
                    money(task.cost_micros, task.simulated),
                    t.fg(cost_role),
                )),
            ];
            if wide {
                cells.push(Cell::from(format_usd(task.budget_micros)));
                cells.push(Cell::from(
                    task.price_micros
                        .map(format_usd)
                        .unwrap_or_else(|| "-".into()),
                ));
            }
            let row = Row::new(cells).style(t.fg(Role::Text));
            if view.on_tasks && i == sel {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .column_spacing(1),
        area,
    );
}

fn draw_models(frame: &mut Frame, t: &Theme, m: &ClientMonth, area: Rect) {
    let header = Row::new(["MODEL", "CALLS", "TOKENS", "COST"]).style(t.fg(Role::Muted));
    let rows: Vec<Row> = m
        .by_model
        .iter()
        .take(area.height.saturating_sub(1) as usize)
        .map(|s| {
            let style = if s.simulated {
                t.fg(Role::Simulated)
            } else {
                t.fg(Role::Text)
            };
            Row::new([
                Cell::from(truncate(&s.model, 22)),
                Cell::from(s.calls.to_string()),
                Cell::from((s.input_tokens + s.output_tokens).to_string()),
                Cell::from(money(s.cost_micros, s.simulated)),
            ])
            .style(style)
        })
        .collect();
    if rows.is_empty() {
        return muted(frame, t, area, " No model call this month.");
    }
    let widths = [
        Constraint::Length(22),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(14),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .style(Style::default()),
        area,
    );
}
