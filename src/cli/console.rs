//! `ecca` with no command: the console. It attaches to `ecca serve` of the data dir,
//! starting one in the background when none runs, so closing the console never stops a
//! run. `--in-process` (and `--demo`) keep the supervisor and the tool servers in the
//! console's own process instead. `--demo` adds a sample client and a few tasks.

use super::Setup;
use crate::config::ProviderKind;
use crate::console::app::{App, Header};
use crate::console::keymap::Keymap;
use crate::console::link::{Events, Link};
use crate::console::theme::Theme;
use crate::console::{event_loop, terminal};
use crate::store::Store;
use crate::supervisor::{Command, NewTask, Supervisor, SupervisorOptions};

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
    let rows = crate::console::model::load_rows(store)?;
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

pub async fn run(setup: &Setup, demo: bool, in_process: bool) -> Result<(), String> {
    let daemon = crate::supervisor::socket::Remote::connect(&setup.data_dir)
        .await
        .is_some();
    if daemon && (demo || in_process) {
        return Err(format!(
            "ecca serve is running for {} and owns its runs; open the console without {} to attach to it, or stop it first with `ecca serve --stop`",
            setup.data_dir.display(),
            if demo { "--demo" } else { "--in-process" }
        ));
    }
    if demo || in_process {
        return run_in_process(setup, demo).await;
    }
    // A console that cannot draw should not leave a daemon behind it.
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return Err("the console needs a terminal; use the headless commands (ecca --help)".into());
    }
    if !daemon {
        super::serve::start_in_background(setup).await?;
    }
    run_attached(setup).await
}

/// The console on `ecca serve`: commands and events over its socket, views from the
/// store file.
async fn run_attached(setup: &Setup) -> Result<(), String> {
    let link = Link::Daemon {
        data_dir: setup.data_dir.clone(),
        config: Box::new(setup.config.clone()),
    };
    let events = link.subscribe().await.ok_or_else(|| {
        format!(
            "ecca serve for {} stopped answering before the console could attach; start it with `ecca serve` and open the console again",
            setup.data_dir.display()
        )
    })?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    if store
        .clients_with_spend(&crate::time::current_month())
        .map_err(|e| e.0)?
        .is_empty()
    {
        link.execute(Command::UpsertClient {
            id: "default".into(),
            name: "Default client".into(),
            monthly_budget_micros: setup.config.default_client_budget_micros(),
        })
        .await?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let header = Header {
        provider: setup.config.resolve_provider(&env),
        tools: link.tools_description().await?,
        schedule: setup.config.daily_schedule()?,
    };
    let app = app_from_store(setup, &store, header)?;
    draw_until_quit(app, events, &link, store).await
}

/// The console with the supervisor and the tool servers in this process.
async fn run_in_process(setup: &Setup, demo: bool) -> Result<(), String> {
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
    // The console stays: batches left running carry on starting their apps here.
    sup.resume_batches().map_err(|e| e.0)?;
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
    // The daily loop runs wherever the supervisor does (one per data dir, by its lock).
    let schedule = setup.config.daily_schedule()?;
    let daily_stop = tokio_util::sync::CancellationToken::new();
    if let Some(schedule) = schedule.clone() {
        let clock = std::sync::Arc::new(crate::time::now_ms);
        tokio::spawn(crate::schedule::run(
            sup.clone(),
            schedule,
            clock,
            daily_stop.clone(),
        ));
    }
    let _stop_daily_loop = daily_stop.drop_guard();
    let header = Header {
        provider,
        tools: sup.tools_description(),
        schedule,
    };
    let app = app_from_store(setup, &store, header)?;
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
                base_branch: None,
                acceptance: Vec::new(),
                price_micros: None,
            };
            sup.execute(Command::StartTask { task })
                .await
                .map_err(|e| e.0)?;
        }
    }
    let result =
        draw_until_quit(app, Events::Local(events), &Link::Local(sup.clone()), store).await;
    tools.stop().await;
    result
}

/// The terminal taken over and the console's loop run until the operator quits or a
/// SIGTERM comes.
async fn draw_until_quit(
    mut app: App,
    events: Events,
    link: &Link,
    store: Store,
) -> Result<(), String> {
    // The SIGTERM listener exists before the terminal is touched: a SIGTERM that came
    // before it would kill the process with the terminal left raw in the alternate screen.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| {
        format!("could not listen for SIGTERM: {e}; the process may be out of file descriptors")
    })?;
    let (mut term, guard) = terminal::setup()?;
    let input = ratatui::crossterm::event::EventStream::new();
    let stop = async move {
        terminate.recv().await;
    };
    let result = event_loop::run(&mut term, &mut app, input, events, link, store, stop).await;
    drop(guard);
    result.map(|_| ())
}

/// Parses `COLSxROWS`.
pub fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("--size {s}: give COLUMNSxROWS, e.g. 120x40"))?;
    let w: u16 = w
        .parse()
        .map_err(|_| format!("--size {s}: {w} is not a number of columns"))?;
    let h: u16 = h
        .parse()
        .map_err(|_| format!("--size {s}: {h} is not a number of rows"))?;
    if !(40..=400).contains(&w) || !(12..=200).contains(&h) {
        return Err(format!(
            "--size {s}: use 40 to 400 columns and 12 to 200 rows"
        ));
    }
    Ok((w, h))
}

/// `ecca screenshot`: a view drawn to SVG, from the sample data or the current store.
pub fn screenshot(
    setup: &Setup,
    view: &str,
    out: &std::path::Path,
    size: &str,
    from_store: bool,
) -> Result<(), String> {
    use crate::console::app::View;
    let (w, h) = parse_size(size)?;
    let (theme, keymap) = look(setup)?;
    let base = match view {
        "detail" => View::Detail,
        "approvals" | "revise" | "reject" => View::Approvals,
        _ => View::Runs,
    };
    let mut app = if from_store {
        let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
        let env = |k: &str| std::env::var(k).ok();
        let header = Header {
            provider: setup.config.resolve_provider(&env),
            tools: "tools as configured".into(),
            schedule: setup.config.daily_schedule().ok().flatten(),
        };
        let mut app = app_from_store(setup, &store, header)?;
        let first = if base == View::Approvals {
            app.waiting().first().map(|r| r.task_id.clone())
        } else {
            app.rows.first().map(|r| r.task_id.clone())
        };
        if let Some(id) = first {
            app.detail.loaded = crate::console::model::load_detail(
                &store,
                &id,
                setup.config.budgets.switch_at_percent,
            )
            .ok();
        }
        // One side of a comparison is drawn beside the other.
        if base == View::Approvals
            && let Some(other) = app
                .approvals
                .sibling_of(&app.rows)
                .map(|r| r.task_id.clone())
        {
            app.approvals.sibling = crate::console::model::load_detail(
                &store,
                &other,
                setup.config.budgets.switch_at_percent,
            )
            .ok();
        }
        app.view = base;
        app
    } else {
        crate::console::fixture::app(theme.clone(), keymap, base)
    };
    app.theme = theme;
    crate::console::stage(&mut app, view)?;
    // Draw once to learn which diff lines show, highlight them, then draw for keeps.
    crate::console::render(&app, w, h)?;
    if let Some(request) = app.highlight_request() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = crate::console::highlight::Highlighter::spawn(move |reply| {
            let _ = tx.send(reply);
        });
        worker.ask(request);
        if let Ok(reply) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
            app.highlighted(reply);
        }
    }
    let buffer = crate::console::render(&app, w, h)?;
    let svg = crate::console::svg::svg(&buffer, &app.theme);
    let tmp = out.with_extension("svg.tmp");
    std::fs::write(&tmp, svg)
        .and_then(|_| std::fs::rename(&tmp, out))
        .map_err(|e| format!("could not write {}: {e}", out.display()))?;
    super::output::say(&format!("wrote {} ({view}, {w}x{h})", out.display()));
    Ok(())
}
