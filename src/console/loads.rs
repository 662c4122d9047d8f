//! The store reads of the Clients and Batch views. They run off the UI loop (the loop
//! hands them to blocking threads) and come back as messages; nothing here draws.

use super::views::batch::{Board, BoardApp, LoadedForecast};
use crate::batch::{forecast, manifest};
use crate::budgets::ClientMonth;
use crate::budgets::month::{MonthInputs, client_months};
use crate::config::Config;
use crate::money::Micros;
use crate::store::{BatchRecord, Store};

/// Every client's month, with what their calls in flight hold now.
pub fn clients(
    store: &Store,
    config: &Config,
    reserved: &dyn Fn(&str) -> Micros,
    now_ms: i64,
) -> Result<Vec<ClientMonth>, String> {
    let month = crate::time::month_of(now_ms);
    let inputs = MonthInputs {
        month: &month,
        now_ms,
        reserved,
        price_share_warn_percent: config.budgets.price_share_warn_percent,
    };
    client_months(store, &inputs, None)
        .map_err(|e| format!("could not read the clients' month: {}", e.0))
}

/// The manifest at `path`, read, checked and forecast for `mode`.
pub fn forecast_of(
    store: &Store,
    config: &Config,
    path: &str,
    mode: &str,
) -> Result<LoadedForecast, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("could not read the manifest {path}: {e}; write the path of a batch manifest (TOML), e.g. examples/rork-batch.toml")
    })?;
    let m = manifest::parse(&text, path)?;
    let f = forecast::forecast(store, config, &m, mode, &crate::time::current_month())?;
    Ok(LoadedForecast {
        path: path.to_string(),
        text,
        name: m.name,
        client_id: m.client,
        concurrency: m.concurrency,
        stacks: m.apps.iter().map(|a| a.stack.clone()).collect(),
        forecast: f,
        mode: mode.to_string(),
    })
}

/// The batches launched so far, newest first.
pub fn batches(store: &Store) -> Result<Vec<BatchRecord>, String> {
    store
        .batches()
        .map_err(|e| format!("could not read the batches: {}", e.0))
}

/// One batch, its apps' tasks and the forecast it was launched with.
pub fn board(store: &Store, batch_id: &str) -> Result<Board, String> {
    let batch = store
        .batch(batch_id)
        .map_err(|e| format!("could not read batch {batch_id}: {}", e.0))?
        .ok_or_else(|| format!("batch {batch_id} does not exist"))?;
    let tasks = store
        .batch_tasks(batch_id)
        .map_err(|e| format!("could not read the apps of {batch_id}: {}", e.0))?;
    let forecast: Option<forecast::Forecast> = batch
        .forecast
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok());
    let apps = tasks
        .iter()
        .map(|t| {
            let app = t.batch_app.clone().unwrap_or_else(|| t.title.clone());
            let expected_micros = forecast.as_ref().and_then(|f| {
                f.apps
                    .iter()
                    .find(|a| a.name == app)
                    .map(|a| a.expected_micros)
            });
            BoardApp {
                app,
                task_id: t.id.clone(),
                expected_micros,
            }
        })
        .collect();
    Ok(Board {
        batch,
        apps,
        forecast,
    })
}
