//! Sample clients' months and a sample batch, on the fixed clock of `fixture`: what the
//! Clients and Batch views show in screenshots, snapshots and frame benchmarks.

use super::app::{App, View};
use super::fixture::{NOW, row};
use super::model::RunRow;
use super::views::batch::{Board, BoardApp, LoadedForecast, Stage};
use super::views::dialogs::Overlay;
use super::views::money_dialog::{MoneyDialog, MoneyFor};
use crate::batch::forecast::{AppForecast, Forecast};
use crate::budgets::{ClientMonth, ModelSpend, PausedRun, TaskMonth};
use crate::domain::TaskStatus;
use crate::money::Micros;
use crate::store::BatchRecord;

/// The 21 apps of `examples/rork-batch.toml`.
pub const RORK_APPS: [&str; 21] = [
    "habit-tracker",
    "tip-splitter",
    "water-reminder",
    "grocery-list",
    "pomodoro-timer",
    "expense-splitter",
    "recipe-scaler",
    "workout-log",
    "mood-journal",
    "plant-watering",
    "flashcards",
    "currency-converter",
    "unit-converter",
    "reading-list",
    "parking-timer",
    "quiz-game",
    "budget-envelopes",
    "meditation-timer",
    "packing-list",
    "step-goal",
    "bill-reminders",
];

const USD: Micros = 1_000_000;

#[allow(clippy::too_many_arguments)] // a table of sample months reads best flat
fn month(
    id: &str,
    name: &str,
    cap: Micros,
    real: Micros,
    simulated: Micros,
    burn: Micros,
    retainer: Option<Micros>,
    tasks: Vec<TaskMonth>,
) -> ClientMonth {
    let projected = real + burn * 9;
    let revenue = retainer.map(|r| r + tasks.iter().filter_map(|t| t.price_micros).sum::<Micros>());
    ClientMonth {
        client_id: id.into(),
        name: name.into(),
        month: "2026-11".into(),
        cap_micros: cap,
        spent_real_micros: real,
        spent_simulated_micros: simulated,
        reserved_micros: if burn > 0 { 45_000 } else { 0 },
        burn_per_day_micros: burn,
        projected_month_micros: projected,
        cap_reached_on: (projected > cap && burn > 0).then(|| {
            let days = ((cap - real - simulated).max(0) + burn - 1) / burn;
            format!("2026-11-{:02}", (21 + days).min(30))
        }),
        retainer_micros: retainer,
        revenue_micros: revenue,
        margin_micros: revenue.map(|r| r - real),
        cost_per_approved_micros: (real > 0).then_some(real / 6),
        paused: Vec::new(),
        tasks,
        by_model: vec![
            ModelSpend {
                model: "claude-sonnet-4-5".into(),
                simulated: false,
                calls: 212,
                input_tokens: 3_100_000,
                output_tokens: 410_000,
                cost_micros: real * 4 / 5,
            },
            ModelSpend {
                model: "claude-haiku-4-5".into(),
                simulated: false,
                calls: 388,
                input_tokens: 1_900_000,
                output_tokens: 220_000,
                cost_micros: real - real * 4 / 5,
            },
            ModelSpend {
                model: "offline".into(),
                simulated: true,
                calls: 40,
                input_tokens: 52_000,
                output_tokens: 18_000,
                cost_micros: simulated,
            },
        ],
    }
}

fn task(id: &str, title: &str, status: TaskStatus, attempts: i64, cost: Micros) -> TaskMonth {
    TaskMonth {
        task_id: id.into(),
        title: title.into(),
        status,
        attempts,
        cost_micros: cost,
        simulated: false,
        budget_micros: 2 * USD,
        price_micros: None,
        over_price_share: false,
    }
}

/// Three clients: acme past 80 % of its cap, globex comfortable, initech at its cap with
/// a run paused on it.
pub fn months() -> Vec<ClientMonth> {
    let acme = month(
        "acme",
        "Acme Corp",
        200 * USD,
        168_402_113,
        1_203_455,
        9_100_000,
        Some(1_500 * USD),
        vec![
            task(
                "T-0008",
                "invoices: add --json to the report CLI",
                TaskStatus::AwaitingApproval,
                1,
                22_905,
            ),
            task(
                "T-0007",
                "Weekly SEO rankings report",
                TaskStatus::Running,
                2,
                1_402_110,
            ),
            TaskMonth {
                price_micros: Some(250 * USD),
                ..task(
                    "T-0005",
                    "Onboarding emails in Postmark",
                    TaskStatus::Delivered,
                    1,
                    3_950_000,
                )
            },
            task(
                "T-0003",
                "CSV export for the orders page",
                TaskStatus::Delivered,
                3,
                7_020_330,
            ),
        ],
    );
    let globex = month(
        "globex",
        "Globex",
        500 * USD,
        203_118_000,
        0,
        14_200_000,
        None,
        vec![task(
            "T-0009",
            "Stripe webhook: verify signatures",
            TaskStatus::AwaitingApproval,
            1,
            41_730,
        )],
    );
    let mut initech = month(
        "initech",
        "Initech",
        50 * USD,
        50_000_000,
        0,
        3_000_000,
        Some(400 * USD),
        vec![task(
            "T-0006",
            "TPS report generator",
            TaskStatus::Paused,
            1,
            4_100_000,
        )],
    );
    initech.paused = vec![PausedRun {
        task_id: "T-0006".into(),
        run_id: "T-0006-r1".into(),
        reason: "client initech reached its monthly cap of $50.000000".into(),
    }];
    vec![acme, globex, initech]
}

/// Gives the Clients view `months` as if the store had answered.
pub fn load_months(app: &mut App, months: Vec<ClientMonth>) {
    if let Some(super::app::Effect::LoadClients { request }) = app.clients.reload() {
        app.clients.loaded(request, Ok(months));
    }
}

/// The forecast of `n` apps.
pub fn forecast(n: usize) -> Forecast {
    let apps: Vec<AppForecast> = (0..n)
        .map(|i| AppForecast {
            name: app_name(i),
            low_micros: 180_000 + (i as Micros % 5) * 10_000,
            expected_micros: 420_000 + (i as Micros % 7) * 15_000,
            high_micros: 1_260_000 + (i as Micros % 7) * 45_000,
        })
        .collect();
    Forecast {
        low_micros: apps.iter().map(|a| a.low_micros).sum(),
        expected_micros: apps.iter().map(|a| a.expected_micros).sum(),
        high_micros: apps.iter().map(|a| a.high_micros).sum(),
        apps,
        basis: "calibrated on 12 finished react-native tasks of this store".into(),
        history_tasks: 12,
        remaining_month_micros: 31_597_887,
        batch_cap_micros: Some(30 * USD),
    }
}

fn app_name(i: usize) -> String {
    match RORK_APPS.get(i) {
        Some(n) => (*n).to_string(),
        None => format!("{}-{}", RORK_APPS[i % RORK_APPS.len()], i / RORK_APPS.len()),
    }
}

/// A batch of `n` apps 25 minutes in: some delivered, some waiting, some failed, some
/// running, the rest pending. Adds the apps' task rows to the app.
pub fn board(app: &mut App, n: usize) -> Board {
    let f = forecast(n);
    let mut apps = Vec::with_capacity(n);
    for i in 0..n {
        let task_id = format!("T-{:04}", 100 + i);
        let (status, state, it, q, cost, mins) = match i % 7 {
            0 | 1 => (
                TaskStatus::Delivered,
                "delivered",
                1,
                Some(8.5),
                402_113,
                25,
            ),
            2 => (
                TaskStatus::AwaitingApproval,
                "awaiting_approval",
                2,
                Some(7.9),
                611_870,
                20,
            ),
            3 => (TaskStatus::Failed, "failed", 3, Some(4.0), 1_120_004, 18),
            4 => (TaskStatus::Running, "testing", 1, None, 210_560, 6),
            5 => (TaskStatus::Running, "coding", 2, Some(6.5), 330_000, 9),
            _ => (TaskStatus::Pending, "pending", 0, None, 0, 0),
        };
        let mut r: RunRow = row(
            &task_id,
            "rork",
            &app_name(i),
            status,
            state,
            "",
            it,
            q,
            cost,
            mins,
        );
        if status == TaskStatus::Pending {
            r.started_at = None;
            r.run_id = None;
        }
        if status == TaskStatus::Failed {
            r.reason = Some("tests failed 3 times: App.test.tsx expected 3 tips, got 2".into());
        }
        if status == TaskStatus::Delivered {
            r.result = Some("delivered: bundle rork/habit-tracker.zip".into());
        }
        r.simulated = false;
        app.rows.push(r);
        apps.push(BoardApp {
            app: app_name(i),
            task_id,
            expected_micros: Some(f.apps[i].expected_micros),
        });
    }
    Board {
        batch: BatchRecord {
            id: "B-0003".into(),
            client_id: "rork".into(),
            name: "Rork November apps".into(),
            manifest: String::new(),
            status: "running".into(),
            concurrency: 4,
            budget_micros: Some(30 * USD),
            forecast: None,
            created_at: NOW - 25 * 60_000,
            finished_at: None,
        },
        apps,
        forecast: Some(f),
    }
}

/// Puts the app on the Batch view's scoreboard of `n` apps.
pub fn stage_board(app: &mut App, n: usize) {
    let b = board(app, n);
    app.view = View::Batch;
    app.batch.stage = Stage::Board;
    app.batch.board = Some(Ok(b));
    app.batch.sel = 3;
}

/// The Clients and Batch views' screenshot states; false for a view of neither.
pub fn stage_money(app: &mut App, view: &str) -> bool {
    match view {
        "clients" | "clients-warn" | "set-cap" => {
            app.view = View::Clients;
            load_months(app, months());
            if view == "set-cap" {
                let mut d = MoneyDialog::new(
                    MoneyFor::ClientCap {
                        client_id: "acme".into(),
                    },
                    200 * USD,
                );
                d.amount.insert_str("260.00");
                d.on_note = true;
                d.show_focus();
                d.note
                    .insert_str("December launch week: approved by Dana on the call");
                app.overlay = Some(Overlay::Money(Box::new(d)));
            }
        }
        "clients-capped" => {
            app.view = View::Clients;
            load_months(app, months());
            app.clients.sel = 2;
        }
        "clients-empty" => {
            app.view = View::Clients;
            load_months(app, Vec::new());
        }
        "batch-open" => {
            app.view = View::Batch;
            app.batch.path = "examples/rork-".into();
            app.batch.completions = vec!["rork-batch.toml".into(), "rork-december.toml".into()];
            let b = board(app, 21);
            app.rows.retain(|r| !r.task_id.starts_with("T-01"));
            app.batch.batches = Some(Ok(vec![
                BatchRecord {
                    status: "finished".into(),
                    ..b.batch.clone()
                },
                BatchRecord {
                    id: "B-0002".into(),
                    name: "Rork October apps".into(),
                    status: "cancelled".into(),
                    created_at: NOW - 30 * 86_400_000,
                    ..b.batch
                },
            ]));
        }
        "batch-empty" => {
            app.view = View::Batch;
            app.batch.batches = Some(Ok(Vec::new()));
        }
        "batch-forecast" => {
            app.view = View::Batch;
            app.batch.stage = Stage::Forecast;
            app.batch.forecast = Some(Ok(LoadedForecast {
                path: "examples/rork-batch.toml".into(),
                text: String::new(),
                name: "Rork November apps".into(),
                client_id: "rork".into(),
                concurrency: 4,
                stacks: vec!["react-native".into(); 21],
                forecast: forecast(21),
                mode: "anthropic".into(),
            }));
        }
        "batch" => stage_board(app, 21),
        _ => return false,
    }
    true
}
