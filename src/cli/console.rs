//! `ecca` with no command: the console on the embedded store, with the supervisor and the
//! tool servers in the same process. `--demo` adds a sample client and a few tasks.

use super::Setup;
use crate::config::ProviderKind;
use crate::console::app::{App, Header};
use crate::console::keymap::Keymap;
use crate::console::model::RunRow;
use crate::console::theme::Theme;
use crate::console::{event_loop, terminal};
use crate::store::Store;
use crate::supervisor::{Command, NewTask, Supervisor, SupervisorOptions};

/// Rows the console opens with; older tasks stay in the store.
pub const ROWS: usize = 500;

/// The theme and keys the config asks for, `NO_COLOR` honoured.
pub fn look(setup: &Setup) -> Result<(Theme, Keymap), String> {
    let overrides = match &setup.config.console.theme_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("could not read the theme file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::load(&setup.config.console.theme, overrides.as_deref(), plain)?;
    let keymap = Keymap::load(&setup.config.console.keys)?;
    Ok((theme, keymap))
}

/// The console's state from the store.
pub fn app_from_store(setup: &Setup, store: &Store, header: Header) -> Result<App, String> {
    let (theme, keymap) = look(setup)?;
    let rows: Vec<RunRow> = store
        .console_rows(ROWS)
        .map_err(|e| e.0)?
        .iter()
        .map(|(t, r)| RunRow::from_record(t, r.as_ref()))
        .collect();
    let clients = store
        .clients_with_spend(&crate::time::current_month())
        .map_err(|e| e.0)?
        .into_iter()
        .map(|c| c.client.id)
        .collect();
    Ok(App::new(
        keymap,
        theme,
        header,
        rows,
        clients,
        crate::time::now_ms(),
    ))
}

const DEMO_TASKS: &[(&str, &str, &str)] = &[
    ("Write a Python hello world", "", "python"),
    ("Parse a CSV of orders and print the total", "", "python"),
    ("Report disk usage of the current directory", "", "bash"),
    (
        "Small string helpers",
        "- slugify a title\n- truncate with an ellipsis\n- title case",
        "javascript",
    ),
];

pub async fn run(setup: &Setup, demo: bool) -> Result<(), String> {
    let (theme, keymap) = look(setup)?;
    let env = |k: &str| std::env::var(k).ok();
    let provider = setup.config.resolve_provider(&env);
    let mut config = setup.config.clone();
    if demo && config.offline.latency_ms == 0 {
        // Simulated work that takes a moment, so a newcomer sees it move.
        config.offline.latency_ms = 600;
    }
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let tools = super::mcp::tools(setup).await?;
    let mut options = SupervisorOptions::new(setup.data_dir.clone(), config.clone());
    options.store = Some(store.clone());
    options.tools = tools.tools.clone();
    let sup = Supervisor::start(options).await.map_err(|e| e.0)?;
    let events = sup.subscribe();
    if store
        .clients_with_spend(&crate::time::current_month())
        .map_err(|e| e.0)?
        .is_empty()
    {
        let budget = config.default_client_budget_micros();
        sup.execute(Command::UpsertClient {
            id: "default".into(),
            name: "Default client".into(),
            monthly_budget_micros: budget,
        })
        .await
        .map_err(|e| e.0)?;
    }
    if demo {
        sup.execute(Command::UpsertClient {
            id: "acme".into(),
            name: "Acme Ltd (demo)".into(),
            monthly_budget_micros: 50_000_000,
        })
        .await
        .map_err(|e| e.0)?;
    }
    let header = Header {
        provider,
        tools: sup.tools_description(),
    };
    let mut app = app_from_store(setup, &store, header)?;
    app.theme = theme;
    app.keymap = keymap;
    if demo {
        for (title, description, stack) in DEMO_TASKS {
            let task = NewTask {
                client_id: "acme".into(),
                title: (*title).into(),
                description: (*description).into(),
                stack: (*stack).into(),
                source: "manual".into(),
                agent_kind: "builtin".into(),
                budget_micros: None,
                provider: Some(ProviderKind::Offline),
            };
            sup.execute(Command::StartTask { task })
                .await
                .map_err(|e| e.0)?;
        }
    }
    let (mut term, guard) = terminal::setup()?;
    let input = ratatui::crossterm::event::EventStream::new();
    let stop = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let result = event_loop::run(&mut term, &mut app, input, events, &sup, store, stop).await;
    drop(guard);
    tools.stop().await;
    result.map(|_| ())
}
