//! The terminal console. It only draws state and sends `Command`s; the supervisor does the
//! work. See `app` (state), `views` (drawing), `keymap` and `theme` (data).

pub mod app;
pub mod event_loop;
pub mod fixture;
pub mod fixture_compare;
pub mod fixture_containers;
pub mod fixture_money;
pub mod form;
pub mod keymap;
pub mod link;
pub mod loads;
pub mod model;
pub mod ring;
pub mod svg;
pub mod terminal;
pub mod theme;
pub mod views;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

/// Draws `app` on an off-screen terminal of `width`×`height` and returns the cells.
pub fn render(app: &app::App, width: u16, height: u16) -> Result<Buffer, String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).map_err(|e| e.to_string())?;
    terminal
        .draw(|f| views::draw(f, app))
        .map_err(|e| e.to_string())?;
    Ok(terminal.backend().buffer().clone())
}

/// The views `ecca screenshot` knows, and what each shows.
pub const SCREENSHOT_VIEWS: &[(&str, &str)] = &[
    ("runs", "the Runs view"),
    ("detail", "the Run detail of a deliverable"),
    ("approvals", "the Approvals queue with its evidence"),
    ("new-task", "the New task form"),
    ("help", "the help overlay"),
    ("revise", "the revise dialog"),
    ("reject", "the reject confirmation"),
    ("empty", "the Runs view before any task"),
    (
        "approvals-repo",
        "the Approvals evidence of a run on a client's repository",
    ),
    (
        "approvals-compare",
        "the Approvals view comparing two agent kinds on one spec",
    ),
    (
        "detail-repo",
        "the Run detail of a run on a client's repository",
    ),
    (
        "critical-review",
        "the full diff a high-risk deliverable opens before approval",
    ),
    (
        "secret-override",
        "the note a secret in the diff asks for before approval",
    ),
    (
        "clients",
        "the Clients view, one client past 80 % of its cap",
    ),
    (
        "clients-capped",
        "the Clients view on a client at its cap, a run paused",
    ),
    ("clients-empty", "the Clients view before any client"),
    ("set-cap", "the dialog that sets a client's monthly cap"),
    (
        "batch-open",
        "the Batch view: a manifest path and the batches launched",
    ),
    (
        "batch-forecast",
        "the Batch view: a manifest's forecast before launch",
    ),
    ("batch", "the Batch view: the scoreboard of a running batch"),
    (
        "containers",
        "the Containers view: the shared servers, a client's and a third-party server",
    ),
    (
        "containers-unhealthy",
        "the Containers view with an unhealthy server and an exited one",
    ),
    (
        "containers-logs",
        "the Containers view following a server's logs",
    ),
    (
        "containers-empty",
        "the Containers view before any container",
    ),
];

/// Puts the app in the state a screenshot view names.
pub fn stage(app: &mut app::App, view: &str) -> Result<(), String> {
    use app::{NoteFor, Overlay, View};
    let note = |text: &str| {
        let mut t = ratatui_textarea::TextArea::default();
        t.insert_str(text);
        t
    };
    match view {
        "runs" => app.view = View::Runs,
        "detail" => app.view = View::Detail,
        "approvals" => app.view = View::Approvals,
        "new-task" => {
            app.view = View::NewTask;
            app.form
                .title
                .insert_str("Upwork #4502: Stripe webhook to Slack");
            app.form
                .description
                .insert_str("- verify the signature\n- post paid invoices to #sales");
        }
        "help" => app.overlay = Some(Overlay::Help),
        "revise" => {
            app.view = View::Approvals;
            let task_id = app
                .waiting()
                .first()
                .map(|r| r.task_id.clone())
                .unwrap_or_default();
            app.overlay = Some(Overlay::Note {
                purpose: NoteFor::Revise,
                task_id,
                text: Box::new(note(
                    "Retry the rankings API twice with backoff,\nand log the week number.",
                )),
            });
        }
        "reject" => {
            app.view = View::Approvals;
            let task_id = app
                .waiting()
                .first()
                .map(|r| r.task_id.clone())
                .unwrap_or_default();
            app.overlay = Some(Overlay::Confirm {
                task_id,
                note: "the client cancelled the retainer".into(),
            });
        }
        "empty" => {
            app.rows.clear();
            app.view = View::Runs;
        }
        other if fixture::stage_repo(app, other) => {}
        other if fixture_money::stage_money(app, other) => {}
        other if fixture_compare::stage_compare(app, other) => {}
        other if fixture_containers::stage_containers(app, other) => {}
        other => {
            let names: Vec<&str> = SCREENSHOT_VIEWS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "there is no view named {other}; the views are {}",
                names.join(", ")
            ));
        }
    }
    Ok(())
}
pub mod highlight;
