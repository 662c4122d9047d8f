//! Every view, drawn at 80×24 and 160×48 from the fixed sample data, pinned as snapshots.
//! The sample data has a fixed clock, so nothing needs masking.

use ecca::console::app::View;
use ecca::console::keymap::Keymap;
use ecca::console::theme::Theme;
use ecca::console::{fixture, render, stage, svg};
use std::collections::BTreeMap;

fn draw(view: &str, w: u16, h: u16) -> String {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let base = match view {
        "detail" => View::Detail,
        "approvals" | "revise" | "reject" => View::Approvals,
        _ => View::Runs,
    };
    let mut app = fixture::app(theme, keymap, base);
    stage(&mut app, view).unwrap();
    svg::text(&render(&app, w, h).unwrap())
}

macro_rules! snapshots {
    ($($name:ident: $view:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(concat!(stringify!($name), "_80x24"), draw($view, 80, 24));
                insta::assert_snapshot!(concat!(stringify!($name), "_160x48"), draw($view, 160, 48));
            }
        )*
    };
}

snapshots! {
    runs: "runs",
    run_detail: "detail",
    approvals: "approvals",
    new_task: "new-task",
    help_overlay: "help",
    revise_dialog: "revise",
    reject_confirmation: "reject",
    empty_runs: "empty",
}

#[test]
fn empty_approvals_and_every_detail_pane() {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme.clone(), keymap.clone(), View::Approvals);
    app.rows
        .retain(|r| r.status != ecca::domain::TaskStatus::AwaitingApproval);
    insta::assert_snapshot!(
        "empty_approvals_80x24",
        svg::text(&render(&app, 80, 24).unwrap())
    );
    let mut app = fixture::app(theme, keymap, View::Detail);
    for pane in 1..ecca::console::app::PANES.len() {
        app.pane = pane;
        let name = format!(
            "detail_pane_{}_160x48",
            ecca::console::app::PANES[pane].to_lowercase()
        );
        insta::assert_snapshot!(name, svg::text(&render(&app, 160, 48).unwrap()));
    }
}

#[test]
fn no_color_draws_without_colours() {
    let theme = Theme::load("dark", None, true).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let app = fixture::app(theme, keymap, View::Runs);
    let buf = render(&app, 80, 24).unwrap();
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "a colour was drawn under NO_COLOR"
        );
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    // The selection is still visible, by reverse video.
    assert!(
        buf.content()
            .iter()
            .any(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED))
    );
}

/// The Run detail's month meter says `~` when any of the client's cost rows this month is
/// an estimate, even when this task's own cost is exact.
#[test]
fn the_month_meter_marks_an_estimated_month_spend() {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Detail);
    let meter = |app: &ecca::console::app::App| -> (String, String) {
        let text = svg::text(&render(app, 160, 48).unwrap());
        let line = |label: &str| {
            text.lines()
                .find(|l| l.contains(&format!(" {label} [")))
                .unwrap_or_else(|| panic!("no {label} meter in:\n{text}"))
                .to_string()
        };
        (line("task "), line("month"))
    };
    let (task, month) = meter(&app);
    assert!(
        !task.contains("~$") && !month.contains("~$"),
        "{task}\n{month}"
    );

    app.detail.as_mut().unwrap().client_month_estimated = true;
    let (task, month) = meter(&app);
    assert!(
        month.contains("~$"),
        "the month meter marks the estimate: {month}"
    );
    assert!(!task.contains("~$"), "the task's own cost is exact: {task}");
}
