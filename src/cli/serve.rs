//! `ecca serve`: the supervisor as a long-lived process. It owns the runs, the tool
//! servers, the Upwork webhook (when its signing secret is stored) and the daily loop, and
//! speaks the Command/Event contract on `ecca.sock` in the data dir, so headless commands
//! from other terminals go through it. SIGTERM, Ctrl-C or `ecca serve --stop` checkpoint
//! its runs (`ecca resume` continues them) and stop it. The console does not attach to it
//! yet.

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
