//! `ecca serve`: the supervisor as a long-lived process. It owns the runs, the tool
//! servers, the Upwork webhook (when its signing secret is stored) and the daily loop, and
//! speaks the Command/Event contract on `ecca.sock` in the data dir, so headless commands
//! from other terminals go through it. SIGTERM, Ctrl-C or `ecca serve --stop` checkpoint
//! its runs (`ecca resume` continues them) and stop it. The console attaches to it, and
//! starts one in the background when none runs (`start_in_background`).

use super::Setup;
use super::output::say;
use super::run::{StopSignals, start};
use crate::intake::Intake;
use crate::store::Store;
use crate::supervisor::socket::{self, Remote};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn serve(setup: &Setup, listen: Option<String>, stop: bool) -> Result<(), String> {
    if stop {
        let mut remote = Remote::connect(&setup.data_dir).await.ok_or_else(|| {
            format!(
                "no ecca serve is running for {}; nothing to stop",
                setup.data_dir.display()
            )
        })?;
        remote.stop().await?;
        say("ecca serve is checkpointing its runs and stopping");
        return Ok(());
    }
    let mut signals = StopSignals::listen()?;
    let webhook = webhook_listener(setup, listen).await?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    // The supervisor takes the data dir's lock first: only then is a socket file left
    // behind known to be stale.
    let (sup, tools) = start(setup, store).await?;
    if setup.config.supervisor.resume_on_start {
        resume_interrupted(&sup).await?;
    }
    // Batches left running carry on starting their apps here.
    sup.resume_batches().map_err(|e| e.0)?;
    let unix = socket::bind(&setup.data_dir)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(socket::serve(sup.clone(), unix, shutdown.clone()));
    say(&format!(
        "ecca serve: commands on {}",
        socket::socket_path(&setup.data_dir).display()
    ));
    let env = |k: &str| std::env::var(k).ok();
    if setup.config.resolve_provider(&env) == crate::config::ProviderKind::Offline {
        say(
            "no model key is configured: jobs run on the offline simulated model (set ANTHROPIC_API_KEY or OPENAI_API_KEY for real work)",
        );
    }
    let server = match webhook {
        Webhook::Off(why) => {
            say(&why);
            None
        }
        Webhook::On(listener, secret) => {
            let address = listener
                .local_addr()
                .map_err(|e| format!("could not read the address listened on: {e}"))?;
            let clock = Arc::new(|| crate::time::now_ms() / 1000);
            let intake = Intake::new(
                sup.clone(),
                secret.as_bytes(),
                setup.config.webhook.max_age_secs,
                clock,
            );
            say(&format!(
                "receiving jobs on http://{address}/webhooks/upwork"
            ));
            let shutdown = shutdown.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, intake.router())
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
            }))
        }
    };
    if let Some(schedule) = setup.config.daily_schedule()? {
        let now = crate::time::now_ms();
        say(&format!(
            "daily loop {} ({}): next {}",
            schedule.expression(),
            schedule.time_zone(),
            schedule
                .next_after(now)
                .map(|at| schedule.describe(at))
                .unwrap_or_else(|| "never".into())
        ));
        tokio::spawn(crate::schedule::run(
            sup.clone(),
            schedule,
            Arc::new(crate::time::now_ms),
            shutdown.clone(),
        ));
    }
    say("SIGTERM, Ctrl-C or `ecca serve --stop` stops it");
    let why = tokio::select! {
        signal = signals.next() => signal,
        _ = shutdown.cancelled() => "ecca serve --stop",
    };
    shutdown.cancel();
    let _ = std::fs::remove_file(socket::socket_path(&setup.data_dir));
    let served = match server {
        Some(server) => server.await,
        None => Ok(Ok(())),
    };
    let stopped = sup.interrupt_all().await.map_err(|e| e.0)?;
    for id in &stopped {
        say(&format!(
            "{id} interrupted: `ecca resume {id}` continues it from its last checkpoint"
        ));
    }
    tools.stop().await;
    say(&format!(
        "ecca serve stopped by {why}; {} run(s) checkpointed",
        stopped.len()
    ));
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the webhook listener failed: {e}")),
        Err(e) => Err(format!("the webhook listener stopped unexpectedly: {e}")),
    }
}

/// Every interrupted task goes on from its checkpoint; one that cannot is said and left.
async fn resume_interrupted(sup: &crate::supervisor::Supervisor) -> Result<(), String> {
    let interrupted: Vec<String> = sup
        .store()
        .tasks(100_000)
        .map_err(|e| e.0)?
        .into_iter()
        .filter(|t| t.status == crate::domain::TaskStatus::Interrupted)
        .map(|t| t.id)
        .collect();
    for task_id in interrupted {
        let resumed = sup
            .execute(crate::supervisor::Command::Resume {
                task_id: task_id.clone(),
            })
            .await;
        match resumed {
            Ok(_) => say(&format!("{task_id} resumed from its last checkpoint")),
            Err(e) => say(&format!("{task_id} stays interrupted: {}", e.0)),
        }
    }
    Ok(())
}

enum Webhook {
    On(tokio::net::TcpListener, String),
    /// Why there is none, for the operator.
    Off(String),
}

/// The webhook's listener, when its signing secret is stored: a webhook that cannot verify
/// what it receives must not listen at all.
async fn webhook_listener(setup: &Setup, listen: Option<String>) -> Result<Webhook, String> {
    let secret_name = &setup.config.webhook.secret;
    let secret = match crate::secrets::server_secret(&setup.data_dir, secret_name) {
        Ok(secret) => secret,
        Err(e) => {
            return Ok(Webhook::Off(format!(
                "webhook off: its signing secret {secret_name:?} is not stored ({e}); `ecca containers secret {secret_name} --from-env VAR` turns it on"
            )));
        }
    };
    let listen = listen.unwrap_or_else(|| setup.config.webhook.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        format!("could not listen on {listen}: {e}; choose another address with --listen or [webhook] listen")
    })?;
    Ok(Webhook::On(listener, secret))
}

/// Starts `ecca serve` for this data dir as a background process of its own session (it
/// outlives the console that started it), its output in `serve.log` in the data dir, and
/// returns once its socket answers.
pub(super) async fn start_in_background(setup: &Setup) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    crate::store::create_private_dir(&setup.data_dir).map_err(|e| e.0)?;
    let log_path = setup.data_dir.join("serve.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| {
            format!(
                "could not open {} for ecca serve's output: {e}",
                log_path.display()
            )
        })?;
    let err_log = log
        .try_clone()
        .map_err(|e| format!("could not share {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| {
        format!("could not find this ecca's own executable to start ecca serve: {e}")
    })?;
    say(&format!(
        "starting ecca serve in the background (its output: {}); `ecca serve --stop` stops it",
        log_path.display()
    ));
    let mut command = std::process::Command::new(exe);
    command.arg("--data-dir").arg(&setup.data_dir);
    // No config file: the daemon takes the same defaults as this console.
    if setup.config_path.exists() {
        command.arg("--config").arg(&setup.config_path);
    }
    command
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log);
    // A session of its own: the terminal's hang-up and Ctrl-C do not reach it.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start ecca serve: {e}"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if Remote::connect(&setup.data_dir).await.is_some() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last: Vec<&str> = said.lines().rev().take(3).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            return Err(format!(
                "ecca serve could not start ({status}): {}; see {} (or open the console with --in-process)",
                last.join(" / "),
                log_path.display()
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "ecca serve started but did not answer on {} within 2 minutes; see {}",
                socket::socket_path(&setup.data_dir).display(),
                log_path.display()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
