//! `ecca serve`: the supervisor as a long-lived process that receives work from outside.
//!
//! Today it runs the supervisor with its tool servers, the Upwork webhook and the daily
//! loop (`crate::schedule`); runs it starts
//! are interrupted at their last checkpoint when it stops (SIGTERM or Ctrl-C) and `ecca
//! resume` continues them. The console does not attach to it yet: it holds the data dir's
//! lock, as any other ecca process does.

use super::Setup;
use super::output::say;
use super::run::{StopSignals, start};
use crate::intake::Intake;
use crate::store::Store;
use std::sync::Arc;

pub(super) async fn serve(setup: &Setup, listen: Option<String>) -> Result<(), String> {
    let mut signals = StopSignals::listen()?;
    let listen = listen.unwrap_or_else(|| setup.config.webhook.listen.clone());
    let secret_name = &setup.config.webhook.secret;
    let secret = crate::secrets::server_secret(&setup.data_dir, secret_name).map_err(|e| {
        format!(
            "the webhook's signing secret {secret_name:?} could not be read ({e}); store it with `ecca containers secret {secret_name} --from-env VAR`"
        )
    })?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| {
            format!("could not listen on {listen}: {e}; choose another address with --listen or [webhook] listen")
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("could not read the address listened on: {e}"))?;
    let store = Store::open(&setup.data_dir).map_err(|e| e.0)?;
    let (sup, tools) = start(setup, store).await?;
    let clock = Arc::new(|| crate::time::now_ms() / 1000);
    let intake = Intake::new(
        sup.clone(),
        secret.as_bytes(),
        setup.config.webhook.max_age_secs,
        clock,
    );
    let env = |k: &str| std::env::var(k).ok();
    if setup.config.resolve_provider(&env) == crate::config::ProviderKind::Offline {
        say(
            "no model key is configured: jobs run on the offline simulated model (set ANTHROPIC_API_KEY or OPENAI_API_KEY for real work)",
        );
    }
    say(&format!(
        "ecca serve: receiving jobs on http://{address}/webhooks/upwork; SIGTERM or Ctrl-C stops it"
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
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
    let server = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, intake.router())
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        })
    };
    let signal = signals.next().await;
    shutdown.cancel();
    let served = server.await;
    let stopped = sup.interrupt_all().await.map_err(|e| e.0)?;
    for id in &stopped {
        say(&format!(
            "{id} interrupted: `ecca resume {id}` continues it from its last checkpoint"
        ));
    }
    tools.stop().await;
    say(&format!(
        "ecca serve stopped by {signal}; {} run(s) checkpointed",
        stopped.len()
    ));
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the webhook listener failed: {e}")),
        Err(e) => Err(format!("the webhook listener stopped unexpectedly: {e}")),
    }
}
