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
    approvals_compare: "approvals-compare",
    new_task: "new-task",
    help_overlay: "help",
    revise_dialog: "revise",
    reject_confirmation: "reject",
    empty_runs: "empty",
    clients: "clients",
    clients_capped: "clients-capped",
    clients_empty: "clients-empty",
    set_cap_dialog: "set-cap",
    batch_open: "batch-open",
    batch_empty: "batch-empty",
    batch_forecast: "batch-forecast",
    batch_scoreboard: "batch",
    containers: "containers",
    containers_unhealthy: "containers-unhealthy",
    containers_logs: "containers-logs",
    containers_empty: "containers-empty",
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
        app.detail.pane = pane;
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

    app.detail.loaded.as_mut().unwrap().client_month_estimated = true;
    let (task, month) = meter(&app);
    assert!(
        month.contains("~$"),
        "the month meter marks the estimate: {month}"
    );
    assert!(!task.contains("~$"), "the task's own cost is exact: {task}");
}

/// A run on a client's repository: its evidence in Approvals (full at 120×36, compact at
/// 80×24), the critical-review overlay, the secret-override dialog, and the Run detail's
/// Evidence pane.
#[test]
fn repository_runs_show_their_evidence_and_the_dialogs_risk_demands() {
    for (view, sizes) in [
        ("approvals-repo", &[(120, 36), (80, 24)][..]),
        ("critical-review", &[(120, 36)][..]),
        ("secret-override", &[(120, 36), (80, 24)][..]),
        ("detail-repo", &[(120, 36)][..]),
    ] {
        for (w, h) in sizes {
            let name = format!("{}_{w}x{h}", view.replace('-', "_"));
            insta::assert_snapshot!(name, draw(view, *w, *h));
        }
    }
}

/// What the snapshots pin, said in words, so a wrong snapshot cannot be accepted unread.
#[test]
fn the_repository_evidence_holds_every_part() {
    let full = draw("approvals-repo", 120, 36);
    for part in [
        "result SUCCESS",
        "main @ 4e1c9a7 → agt/T-0008",
        "files  4 changed  +38 −2",
        "A tests/test_cli_json.py",
        "before test  passed  python3 -m unittest discover -q",
        "after  lint  passed  ruff check .",
        "criteria 3 of 3 met",
        "[x] The README documents the flag",
        "risk   45/100 moderate",
        "· changes a public CLI entry point",
        "diff --git a/README.md b/README.md",
        "cost $0.022905*",
    ] {
        assert!(full.contains(part), "no {part:?} in:\n{full}");
    }
    // 80×24 keeps the result, the checks and the risk, and some of the patch.
    let small = draw("approvals-repo", 80, 24);
    for part in [
        "result SUCCESS",
        "before test",
        "risk   45/100",
        "diff --git",
    ] {
        assert!(small.contains(part), "no {part:?} at 80×24:\n{small}");
    }
    let secret = draw("secret-override", 120, 36);
    assert!(
        secret.contains("stripe webhook secret at config/settings.py:11  ****9f2c")
            && secret.contains("the note is required"),
        "{secret}"
    );
    let review = draw("critical-review", 120, 36);
    assert!(
        review.contains("Critical review T-0009 · risk 82/100")
            && review.contains("lines below: page to the end"),
        "{review}"
    );
}

/// Greenfield runs look as they did: no Evidence tab, lint and tests in the evidence.
#[test]
fn greenfield_runs_have_no_repository_evidence() {
    let detail = draw("detail", 120, 36);
    assert!(detail.contains("Output │ Diff │ Lint"), "{detail}");
    assert!(!detail.contains("Evidence"), "{detail}");
    let approvals = draw("approvals", 120, 36);
    assert!(approvals.contains("lint  ruff 0.17.6"), "{approvals}");
    assert!(!approvals.contains("result "), "{approvals}");
}

/// Once delivered, the Evidence pane says where the pull request is.
#[test]
fn a_delivered_repository_run_shows_its_pull_request() {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Runs);
    stage(&mut app, "detail-repo").unwrap();
    let before = svg::text(&render(&app, 120, 36).unwrap());
    assert!(!before.contains("pull request"), "{before}");
    let url = "https://github.com/acme/invoices/pull/57";
    let d = app.detail.loaded.as_mut().unwrap();
    d.apply(
        &ecca::supervisor::Event::Delivered {
            task_id: "T-0008".into(),
            url: url.into(),
        },
        fixture::NOW,
    );
    let after = svg::text(&render(&app, 120, 36).unwrap());
    assert!(after.contains(&format!("pull request {url}")), "{after}");
}

#[test]
fn the_forecast_scrolls_to_its_last_app_at_80x24() {
    let theme = Theme::load("dark", None, false).unwrap();
    let keymap = Keymap::load(&BTreeMap::new()).unwrap();
    let mut app = fixture::app(theme, keymap, View::Runs);
    stage(&mut app, "batch-forecast").unwrap();
    let first = svg::text(&render(&app, 80, 24).unwrap());
    assert!(first.contains("habit-tracker") && !first.contains("bill-reminders"));
    assert!(first.contains("more apps: j/k scroll"), "{first}");
    let j = ratatui::crossterm::event::KeyEvent::new(
        ratatui::crossterm::event::KeyCode::Char('j'),
        ratatui::crossterm::event::KeyModifiers::NONE,
    );
    for _ in 0..30 {
        app.key(j);
    }
    let last = svg::text(&render(&app, 80, 24).unwrap());
    assert!(
        last.contains("bill-reminders") && !last.contains("habit-tracker"),
        "{last}"
    );
    assert!(last.contains("TOTAL"), "the total stays: {last}");
}
