//! `ecca containers …`: what the Containers view shows and does, headless.

use super::Setup;
use super::output::{say, say_json, tell};
use crate::containers::Engine;
use crate::containers::managed::{ContainerRow, ContainerVerb};
use crate::containers::servers::launch_spec;
use crate::containers::watch::{cpu_and_memory, probe};
use crate::mcp::registry::Registry;
use bollard::query_parameters::StatsOptions;
use clap::Subcommand;
use futures::StreamExt;

#[derive(Debug, Subcommand)]
pub enum ContainersCommand {
    /// Every container ecca manages (its servers, third-party servers, the compose project's
    /// services) with state, health, ports and restarts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A container's logs (the last --tail lines), following new ones with --follow.
    Logs {
        name: String,
        #[arg(long)]
        follow: bool,
        /// Only lines containing TEXT (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
        #[arg(long, default_value_t = 200)]
        tail: usize,
    },
    /// Start a stopped container, or a registry server in a new hardened container.
    Start {
        name: String,
        /// For client-github: the client it serves.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
    },
    /// Remove a container (stopping it first).
    Rm {
        name: String,
    },
    /// CPU and memory of every running managed container, measured now.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Store a secret a registry entry's env names as `secret:NAME` (encrypted at rest).
    Secret {
        name: String,
        /// The environment variable that holds the value (never given on the command line).
        #[arg(long, value_name = "VAR")]
        from_env: String,
    },
}

async fn engine() -> Result<Engine, String> {
    Engine::connect().await.map_err(|e| e.0)
}

pub async fn run(setup: &Setup, command: ContainersCommand) -> Result<(), String> {
    match command {
        ContainersCommand::List { json } => list(json).await,
        ContainersCommand::Logs {
            name,
            follow,
            grep,
            tail,
        } => logs(&name, follow, grep.as_deref(), tail).await,
        ContainersCommand::Start { name, client } => start(setup, &name, client.as_deref()).await,
        ContainersCommand::Stop { name } => act(&name, ContainerVerb::Stop).await,
        ContainersCommand::Restart { name } => act(&name, ContainerVerb::Restart).await,
        ContainersCommand::Rm { name } => act(&name, ContainerVerb::Remove).await,
        ContainersCommand::Stats { json } => stats(json).await,
        ContainersCommand::Secret { name, from_env } => {
            let value = std::env::var(&from_env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the environment variable {from_env} is not set"))?;
            crate::secrets::set_server_secret(&setup.data_dir, &name, &value)?;
            say(&format!(
                "secret {name} stored ({}); a registry entry uses it as \"secret:{name}\"",
                crate::secrets::mask(&value)
            ));
            Ok(())
        }
    }
}

/// Rows with their health asked now.
async fn rows_with_health(engine: &Engine) -> Result<(Vec<ContainerRow>, usize), String> {
    let (mut rows, sandboxes) = engine.managed_containers().await.map_err(|e| e.0)?;
    let probes = rows.iter().map(|r| {
        let endpoint = r.endpoint.clone();
        let server = r.title().to_string();
        async move {
            match endpoint {
                Some(e) => Some(probe(&server, &e).await),
                None => None,
            }
        }
    });
    let healths = futures::future::join_all(probes).await;
    for (row, health) in rows.iter_mut().zip(healths) {
        if let Some(h) = health {
            row.health = h;
        }
    }
    Ok((rows, sandboxes.len()))
}

async fn list(json: bool) -> Result<(), String> {
    let engine = engine().await?;
    let (rows, sandboxes) = rows_with_health(&engine).await?;
    if json {
        return say_json(&serde_json::json!({"containers": rows, "sandboxes_running": sandboxes}));
    }
    if rows.is_empty() {
        say(
            "no containers ecca manages; start one with `ecca containers start SERVER` or `docker-compose -f compose/compose.yaml up -d`",
        );
    }
    for r in &rows {
        let health = match &r.health {
            crate::containers::managed::Health::Unhealthy { reason } => {
                format!("unhealthy: {reason}")
            }
            h => h.label(),
        };
        say(&format!(
            "{:<18} {:<28} {:<9} {:<24} {:<20} restarts {}  {}",
            r.title(),
            r.name,
            r.state,
            health,
            r.ports.join(","),
            r.restarts,
            r.image
        ));
    }
    if sandboxes > 0 {
        say(&format!("{sandboxes} sandboxes running programs"));
    }
    Ok(())
}

async fn logs(name: &str, follow: bool, grep: Option<&str>, tail: usize) -> Result<(), String> {
    let engine = engine().await?;
    let row = engine.resolve_managed(name).await.map_err(|e| e.0)?;
    let needle = grep.map(str::to_lowercase);
    let mut lines = Box::pin(engine.log_lines(&row.id, follow, tail));
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| e.0)?;
        if needle
            .as_ref()
            .is_none_or(|n| line.to_lowercase().contains(n))
        {
            say(&line);
        }
    }
    Ok(())
}

async fn start(setup: &Setup, name: &str, client: Option<&str>) -> Result<(), String> {
    let engine = engine().await?;
    // A container that exists (stopped) starts again; a server name launches one.
    if client.is_none()
        && let Ok(row) = engine.resolve_managed(name).await
    {
        if row.running() {
            return Err(format!("{} is already running", row.name));
        }
        engine
            .act_on(&row.name, ContainerVerb::Start)
            .await
            .map_err(|e| e.0)?;
        say(&format!("{} started", row.name));
        return Ok(());
    }
    let registry = Registry::of_data_dir(&setup.data_dir)?;
    let project = std::env::current_dir()
        .map_err(|e| format!("could not read the current directory: {e}"))?;
    let data_dir = setup.data_dir.clone();
    let secret = |n: &str| crate::secrets::server_secret(&data_dir, n);
    let spec = launch_spec(name, client, &registry, &setup.data_dir, &project, &secret)?;
    tell(&format!(
        "starting {} from {}",
        spec.container_name, spec.image
    ));
    let row = engine.launch_server(&spec).await.map_err(|e| e.0)?;
    say(&format!(
        "{} started{}",
        row.name,
        row.endpoint
            .as_deref()
            .map(|e| format!("; MCP at {e}"))
            .unwrap_or_default()
    ));
    Ok(())
}

async fn act(name: &str, verb: ContainerVerb) -> Result<(), String> {
    let engine = engine().await?;
    let row = engine.act_on(name, verb).await.map_err(|e| e.0)?;
    say(&format!("{} {}", row.name, verb.done()));
    Ok(())
}

#[derive(serde::Serialize)]
struct StatLine {
    name: String,
    title: String,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
    memory_limit: Option<u64>,
}

async fn stats(json: bool) -> Result<(), String> {
    let engine = engine().await?;
    let (rows, _) = engine.managed_containers().await.map_err(|e| e.0)?;
    let running: Vec<&ContainerRow> = rows.iter().filter(|r| r.running()).collect();
    // One two-sample reading per container, all at once (the engine takes about a second).
    let readings = futures::future::join_all(running.iter().map(|r| {
        let docker = engine.docker().clone();
        let id = r.id.clone();
        async move {
            let options = StatsOptions {
                stream: false,
                one_shot: false,
            };
            let mut s = docker.stats(&id, Some(options));
            match s.next().await {
                Some(Ok(reading)) => cpu_and_memory(&reading),
                _ => (None, None),
            }
        }
    }))
    .await;
    let lines: Vec<StatLine> = running
        .iter()
        .zip(readings)
        .map(|(r, (cpu, memory))| StatLine {
            name: r.name.clone(),
            title: r.title().to_string(),
            cpu_percent: cpu,
            memory_bytes: memory,
            memory_limit: r.memory_limit,
        })
        .collect();
    if json {
        return say_json(&lines);
    }
    if lines.is_empty() {
        say("no managed container is running");
    }
    for l in &lines {
        say(&format!(
            "{:<18} {:<28} cpu {:>6}  memory {}",
            l.title,
            l.name,
            l.cpu_percent
                .map(|c| format!("{c:.1}%"))
                .unwrap_or_else(|| "–".into()),
            crate::containers::managed::format_memory(l.memory_bytes, l.memory_limit)
        ));
    }
    Ok(())
}
