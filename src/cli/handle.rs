//! The supervisor a headless command talks to: `ecca serve` through its socket when one
//! runs for the data dir (the runs then outlive the command), else one in this process.

use super::Setup;
use super::output;
use super::run::{StopSignals, follow, progress_line, settle, start, stop_following};
use crate::domain::TaskStatus;
use crate::store::{Store, TaskRecord};
use crate::supervisor::socket::{Remote, socket_path};
use crate::supervisor::{Command, Reply, Supervisor};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub(super) enum Handle {
    Local {
        sup: Supervisor,
        tools: super::mcp::ToolsGuard,
        progress: tokio::task::JoinHandle<()>,
    },
    Remote {
        remote: Remote,
        store: Store,
        /// The tasks whose progress is printed (the daemon's stream carries every run).
        followed: Arc<Mutex<HashSet<String>>>,
        progress: Option<tokio::task::JoinHandle<()>>,
    },
}

impl Handle {
    pub(super) async fn open(setup: &Setup, store: Store) -> Result<Handle, String> {
        let Some(remote) = Remote::connect(&setup.data_dir).await else {
            let (sup, tools) = start(setup, store).await?;
            let progress = follow(sup.subscribe());
            return Ok(Handle::Local {
                sup,
                tools,
                progress,
            });
        };
        output::tell(&format!(
            "through ecca serve ({}): runs go on if this command stops",
            socket_path(&setup.data_dir).display()
        ));
        let followed: Arc<Mutex<HashSet<String>>> = Arc::default();
        let progress = match Remote::connect(&setup.data_dir).await {
            Some(events) => match events.subscribe().await {
                Ok(mut rx) => {
                    let followed = followed.clone();
                    Some(tokio::spawn(async move {
                        while let Some(delivery) = rx.recv().await {
                            let crate::supervisor::Delivery::Event(event) = delivery else {
                                continue;
                            };
                            let ours = event.task_id().is_some_and(|id| {
                                followed.lock().map(|f| f.contains(id)).unwrap_or(false)
                            });
                            if let Some(line) = progress_line(&event).filter(|_| ours) {
                                output::tell(&line);
                            }
                        }
                    }))
                }
                Err(_) => None,
            },
            None => None,
        };
        Ok(Handle::Remote {
            remote,
            store,
            followed,
            progress,
        })
    }

    pub(super) async fn execute(&mut self, command: Command) -> Result<Reply, String> {
        match self {
            Handle::Local { sup, .. } => sup.execute(command).await.map_err(|e| e.0),
            Handle::Remote { remote, .. } => remote.execute(command).await,
        }
    }

    /// The task once its run rests. A stop signal interrupts a local run at its checkpoint;
    /// a run of `ecca serve` goes on.
    pub(super) async fn settle(
        &mut self,
        task_id: &str,
        signals: &mut StopSignals,
    ) -> Result<TaskRecord, String> {
        match self {
            Handle::Local { sup, .. } => settle(sup, task_id, signals).await,
            Handle::Remote {
                remote,
                store,
                followed,
                ..
            } => {
                if let Ok(mut f) = followed.lock() {
                    f.insert(task_id.to_string());
                }
                tokio::select! {
                    settled = remote.wait_settled(task_id) => {
                        let settled = settled?;
                        let mut task = store
                            .task(task_id)
                            .map_err(|e| e.0)?
                            .ok_or_else(|| format!("task {task_id} does not exist"))?;
                        // The daemon's answer wins over a store read that raced its
                        // stop: a run it interrupted may still be stored as running.
                        if let Some(status) = TaskStatus::parse(&settled)
                            && status != task.status
                            && task.status.is_in_flight()
                        {
                            task.status = status;
                            task.status_reason = Some(format!(
                                "ecca serve stopped; `ecca resume {task_id}` continues it from its last checkpoint"
                            ));
                        }
                        Ok(task)
                    }
                    signal = signals.next() => Err(format!(
                        "stopped by {signal}; {task_id} goes on in ecca serve (`ecca tasks` shows where it is)"
                    )),
                }
            }
        }
    }

    pub(super) fn store(&self) -> &Store {
        match self {
            Handle::Local { sup, .. } => sup.store(),
            Handle::Remote { store, .. } => store,
        }
    }

    pub(super) async fn close(self) {
        match self {
            Handle::Local {
                tools, progress, ..
            } => {
                stop_following(progress).await;
                tools.stop().await;
            }
            Handle::Remote { progress, .. } => {
                if let Some(p) = progress {
                    stop_following(p).await;
                }
            }
        }
    }
}
