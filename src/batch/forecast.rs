//! The cost forecast of a batch before it launches: per app a low, expected and high cost,
//! calibrated on this store's history of finished tasks of the same stack, agent kind and
//! model mode when there is one, else estimated from the price table and the tokens each
//! step of the loop typically uses. Then the batch against what remains of the client's
//! month and the batch's own cap.

use super::manifest::Manifest;
use crate::config::Config;
use crate::money::{Micros, format_usd};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppForecast {
    pub name: String,
    pub low_micros: Micros,
    pub expected_micros: Micros,
    pub high_micros: Micros,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub apps: Vec<AppForecast>,
    pub low_micros: Micros,
    pub expected_micros: Micros,
    pub high_micros: Micros,
    /// Where the figures come from, for the operator.
    pub basis: String,
    /// Finished tasks the figures are calibrated on (0: the price table alone).
    pub history_tasks: usize,
    /// The client's cap less what the month has charged so far.
    pub remaining_month_micros: Micros,
    pub batch_cap_micros: Option<Micros>,
}

impl Forecast {
    /// Why launching needs a confirmation: the expected total passes what remains of the
    /// month or the batch's cap. None when it fits.
    pub fn over_budget(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.expected_micros > self.remaining_month_micros {
            why.push(format!(
                "the expected {} passes the {} left in the client's month",
                format_usd(self.expected_micros),
                format_usd(self.remaining_month_micros.max(0))
            ));
        }
        if let Some(cap) = self.batch_cap_micros
            && self.expected_micros > cap
        {
            why.push(format!(
                "the expected {} passes the batch's cap of {}",
                format_usd(self.expected_micros),
                format_usd(cap)
            ));
        }
        (!why.is_empty()).then(|| why.join(", and "))
    }
}

/// Tokens one pass of the loop typically uses per step, when there is no history: (step's
/// model, prompt tokens besides the description, output tokens).
const STEP_TOKENS: [(Step, u64, u64); 4] = [
    (Step::Planner, 700, 400),
    (Step::Writer, 1_200, 1_800),
    (Step::Writer, 1_000, 700),
    (Step::Cheap, 1_500, 120),
];

#[derive(Clone, Copy)]
enum Step {
    Planner,
    Writer,
    Cheap,
}

/// A quantile of sorted values (nearest rank).
fn quantile(sorted: &[Micros], q: f64) -> Micros {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The forecast of `manifest` run with `model_mode` (`offline`, `anthropic`, …).
pub fn forecast(
    store: &Store,
    config: &Config,
    manifest: &Manifest,
    model_mode: &str,
    month: &str,
) -> Result<Forecast, String> {
    let history = store.finished_task_costs(model_mode).map_err(|e| e.0)?;
    let mut by_stack: BTreeMap<String, Vec<Micros>> = BTreeMap::new();
    for (stack, cost) in history {
        by_stack.entry(stack).or_default().push(cost);
    }
    for costs in by_stack.values_mut() {
        costs.sort_unstable();
    }
    let mut apps = Vec::with_capacity(manifest.apps.len());
    let mut used_history = 0;
    let mut priced_only = 0;
    for app in &manifest.apps {
        let f = match by_stack.get(&app.stack) {
            Some(costs) if costs.len() >= 3 => {
                used_history += 1;
                // The middle of history is the expectation; its tails, widened a tenth,
                // the range.
                AppForecast {
                    name: app.name.clone(),
                    low_micros: quantile(costs, 0.05) * 9 / 10,
                    expected_micros: quantile(costs, 0.5),
                    high_micros: quantile(costs, 0.95) * 11 / 10,
                }
            }
            _ => {
                priced_only += 1;
                let expected = price_table_estimate(config, &app.description);
                AppForecast {
                    name: app.name.clone(),
                    low_micros: expected / 2,
                    expected_micros: expected,
                    // Up to three passes of the loop.
                    high_micros: expected * 3,
                }
            }
        };
        // A per-app budget bounds what the app can spend.
        let f = match app.budget_micros {
            Some(b) => AppForecast {
                low_micros: f.low_micros.min(b),
                expected_micros: f.expected_micros.min(b),
                high_micros: f.high_micros.min(b),
                ..f
            },
            None => f,
        };
        apps.push(f);
    }
    let history_tasks: usize = manifest
        .apps
        .iter()
        .map(|a| a.stack.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(|s| by_stack.get(*s).map_or(0, Vec::len))
        .sum();
    let basis = if used_history == 0 {
        "no history: estimate from the price table only".to_string()
    } else if priced_only == 0 {
        format!("calibrated on {history_tasks} finished {model_mode} task(s) of the same stack")
    } else {
        format!(
            "{used_history} app(s) calibrated on {history_tasks} finished {model_mode} task(s); \
             {priced_only} with no history of their stack, estimated from the price table only"
        )
    };
    let client = store
        .client(&manifest.client)
        .map_err(|e| e.0)?
        .ok_or_else(|| {
            format!(
                "client {} does not exist; add it with `ecca clients add {} --name … --budget-usd …`",
                manifest.client, manifest.client
            )
        })?;
    let spent = store
        .client_month_spend(&manifest.client, month)
        .map_err(|e| e.0)?;
    Ok(Forecast {
        low_micros: apps.iter().map(|a| a.low_micros).sum(),
        expected_micros: apps.iter().map(|a| a.expected_micros).sum(),
        high_micros: apps.iter().map(|a| a.high_micros).sum(),
        apps,
        basis,
        history_tasks,
        remaining_month_micros: client.monthly_budget_micros - spent,
        batch_cap_micros: manifest.budget_micros,
    })
}

/// One pass of the loop priced from the table: every step's prompt (with the description)
/// and output at the configured models' prices.
fn price_table_estimate(config: &Config, description: &str) -> Micros {
    let description_tokens = (description.len() as u64).div_ceil(4);
    let mut total = 0;
    for (step, prompt, output) in STEP_TOKENS {
        let model = match step {
            Step::Planner => &config.models.planner,
            Step::Writer => &config.models.writer,
            Step::Cheap => &config.models.cheap,
        };
        if let Some(price) = config.price_of(model) {
            total += price.cost(&crate::money::Usage {
                input_tokens: prompt + description_tokens,
                output_tokens: output,
                ..crate::money::Usage::default()
            });
        }
    }
    total
}
