//! The managed containers, live: Docker's event stream says when one starts, stops or goes
//! away, a stats stream per running container gives CPU and memory, and an MCP round trip
//! gives each server's health. Nothing polls the CLI. Subscribers get a snapshot through a
//! `watch` channel: a state change at once, CPU and memory at most once a second.

use super::managed::{ContainerRow, Health, docker_message, is_sandbox};
use super::{Engine, LABEL_MANAGED};
use crate::mcp::client::McpClients;
use bollard::query_parameters::{EventsOptions, StatsOptions};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What subscribers see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainersSnapshot {
    /// Managed containers that are not sandboxes, by title.
    pub rows: Vec<ContainerRow>,
    /// Sandboxes running programs now.
    pub sandboxes: usize,
    /// Why the engine cannot be seen (no Docker engine, a broken stream), when it cannot.
    pub error: Option<String>,
    /// False until the first listing arrived.
    pub loaded: bool,
}

/// How often a healthy server is asked again.
const HEALTH_EVERY: Duration = Duration::from_secs(30);
/// A server that just started may not listen yet: asked again this soon, while young.
const YOUNG_RETRY: Duration = Duration::from_millis(500);
const YOUNG_FOR: Duration = Duration::from_secs(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The watcher; dropping it stops every stream it opened.
pub struct ContainerWatch {
    pub snapshots: watch::Receiver<Arc<ContainersSnapshot>>,
    refresh: mpsc::UnboundedSender<()>,
    stop: CancellationToken,
}

impl Drop for ContainerWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ContainerWatch {
    /// Starts watching; connects to the engine (and again, every few seconds, while none
    /// answers).
    pub fn spawn() -> ContainerWatch {
        let (tx, rx) = watch::channel(Arc::new(ContainersSnapshot::default()));
        let (refresh_tx, refresh_rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(run(tx, refresh_rx, stop.clone()));
        ContainerWatch {
            snapshots: rx,
            refresh: refresh_tx,
            stop,
        }
    }

    /// Lists everything again (after an action, in case its event was missed).
    pub fn refresh(&self) {
        let _ = self.refresh.send(());
    }
}

enum Live {
    Stats {
        id: String,
        cpu: Option<f64>,
        memory: Option<u64>,
    },
    Health {
        id: String,
        endpoint: String,
        health: Health,
    },
}

struct State {
    engine: Engine,
    rows: HashMap<String, ContainerRow>,
    sandboxes: HashSet<String>,
    stats: HashMap<String, JoinHandle<()>>,
    live: mpsc::UnboundedSender<Live>,
    /// When each server was last asked, and when next.
    probe_due: HashMap<String, Instant>,
    probing: HashSet<String>,
}

async fn run(
    tx: watch::Sender<Arc<ContainersSnapshot>>,
    mut refresh: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
) {
    loop {
        let engine = match Engine::connect().await {
            Ok(e) => e,
            Err(e) => {
                tx.send_replace(Arc::new(ContainersSnapshot {
                    error: Some(e.0),
                    loaded: true,
                    ..Default::default()
                }));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = refresh.recv() => continue,
                }
            }
        };
        let reason = watch_engine(engine, &tx, &mut refresh, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        let mut last = (**tx.borrow()).clone();
        last.error = Some(reason);
        tx.send_replace(Arc::new(last));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Watches one engine connection until it breaks; returns why.
async fn watch_engine(
    engine: Engine,
    tx: &watch::Sender<Arc<ContainersSnapshot>>,
    refresh: &mut mpsc::UnboundedReceiver<()>,
    stop: &CancellationToken,
) -> String {
    let (live_tx, mut live_rx) = mpsc::unbounded_channel();
    let mut state = State {
        engine: engine.clone(),
        rows: HashMap::new(),
        sandboxes: HashSet::new(),
        stats: HashMap::new(),
        live: live_tx,
        probe_due: HashMap::new(),
        probing: HashSet::new(),
    };
    // Subscribe before listing, so that nothing between the two is missed.
    let options = EventsOptions {
        filters: Some(HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![format!("{LABEL_MANAGED}=true")]),
        ])),
        ..Default::default()
    };
    let mut events = engine.docker().events(Some(options));
    if let Err(e) = state.relist().await {
        state.stop_all();
        return e;
    }
    publish(tx, &state, true);
    let mut stats_changed = false;
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probe_tick = tokio::time::interval(Duration::from_millis(250));
    probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        tokio::select! {
            _ = stop.cancelled() => break String::new(),
            _ = refresh.recv() => {
                if let Err(e) = state.relist().await {
                    break e;
                }
                publish(tx, &state, false);
            }
            event = events.next() => match event {
                None => break "Docker's event stream ended; reconnecting".into(),
                Some(Err(e)) => break format!("Docker's event stream broke ({}); reconnecting", docker_message(&e)),
                Some(Ok(event)) => {
                    let Some(actor) = event.actor else { continue };
                    let Some(id) = actor.id else { continue };
                    let action = event.action.unwrap_or_default();
                    let labels = actor.attributes.unwrap_or_default();
                    if state.container_event(&id, &action, &labels).await {
                        publish(tx, &state, false);
                    }
                }
            },
            live = live_rx.recv() => {
                match live {
                    Some(Live::Stats { id, cpu, memory }) => {
                        if let Some(row) = state.rows.get_mut(&short(&id))
                            && (row.cpu_percent != cpu || row.memory_bytes != memory)
                        {
                            row.cpu_percent = cpu;
                            row.memory_bytes = memory;
                            stats_changed = true;
                        }
                    }
                    Some(Live::Health { id, endpoint, health }) => {
                        state.probing.remove(&id);
                        if let Some(row) = state.rows.get_mut(&id).filter(|r| r.endpoint.as_deref() == Some(&endpoint)) {
                            let young = row.started_at_ms.is_some_and(|s| crate::time::now_ms() - s < YOUNG_FOR.as_millis() as i64);
                            let next = if matches!(health, Health::Unhealthy { .. }) && young { YOUNG_RETRY } else { HEALTH_EVERY };
                            state.probe_due.insert(id.clone(), Instant::now() + next);
                            // While young, a refused connection is still "starting".
                            if !(young && matches!(health, Health::Unhealthy { .. })) && row.health != health {
                                row.health = health;
                                publish(tx, &state, false);
                            }
                        }
                    }
                    None => {}
                }
            }
            _ = flush.tick() => {
                if std::mem::take(&mut stats_changed) {
                    publish(tx, &state, false);
                }
            }
            _ = probe_tick.tick() => state.probe_due_servers(),
        }
    };
    state.stop_all();
    reason
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn publish(tx: &watch::Sender<Arc<ContainersSnapshot>>, state: &State, first: bool) {
    let mut rows: Vec<ContainerRow> = state.rows.values().cloned().collect();
    rows.sort_by(|a, b| a.title().cmp(b.title()).then(a.name.cmp(&b.name)));
    let snapshot = ContainersSnapshot {
        rows,
        sandboxes: state.sandboxes.len(),
        error: None,
        loaded: true,
    };
    tx.send_if_modified(|current| {
        if !first && **current == snapshot {
            return false;
        }
        *current = Arc::new(snapshot);
        true
    });
}

impl State {
    async fn relist(&mut self) -> Result<(), String> {
        let (rows, sandboxes) = self.engine.managed_containers().await.map_err(|e| e.0)?;
        self.sandboxes = sandboxes;
        let old = std::mem::take(&mut self.rows);
        for mut row in rows {
            if let Some(before) = old.get(&row.id).filter(|b| b.endpoint == row.endpoint) {
                row.health = before.health.clone();
                row.cpu_percent = before.cpu_percent;
                row.memory_bytes = before.memory_bytes;
            }
            self.rows.insert(row.id.clone(), row);
        }
        self.sync_streams();
        Ok(())
    }

    /// An event about container `id`; true when the snapshot changed.
    async fn container_event(
        &mut self,
        id: &str,
        action: &str,
        labels: &HashMap<String, String>,
    ) -> bool {
        let key = short(id);
        if is_sandbox(labels) {
            let changed = match action {
                "start" => self.sandboxes.insert(key),
                "die" | "destroy" => self.sandboxes.remove(&key),
                _ => false,
            };
            return changed;
        }
        // Execs, attaches and the like change nothing listed.
        if action.starts_with("exec_")
            || matches!(
                action,
                "attach"
                    | "top"
                    | "resize"
                    | "commit"
                    | "copy"
                    | "archive-path"
                    | "extract-to-dir"
                    | "export"
            )
        {
            return false;
        }
        if action == "destroy" {
            self.rows.remove(&key);
            self.sync_streams();
            return true;
        }
        match self.engine.inspect_row(id).await {
            Ok(mut row) => {
                if let Some(before) = self
                    .rows
                    .get(&key)
                    .filter(|b| b.endpoint == row.endpoint && b.running() == row.running())
                {
                    row.health = before.health.clone();
                    row.cpu_percent = before.cpu_percent;
                    row.memory_bytes = before.memory_bytes;
                } else {
                    self.probe_due.insert(key.clone(), Instant::now());
                }
                self.rows.insert(key, row);
            }
            // Gone already.
            Err(_) => {
                self.rows.remove(&key);
            }
        }
        self.sync_streams();
        true
    }

    /// A stats stream for every running container, none for the others.
    fn sync_streams(&mut self) {
        let running: HashSet<String> = self
            .rows
            .values()
            .filter(|r| r.running())
            .map(|r| r.id.clone())
            .collect();
        self.stats.retain(|id, task| {
            let keep = running.contains(id) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for id in running {
            if self.stats.contains_key(&id) {
                continue;
            }
            let docker = self.engine.docker().clone();
            let tx = self.live.clone();
            let stream_id = id.clone();
            let task = tokio::spawn(async move {
                let options = StatsOptions {
                    stream: true,
                    one_shot: false,
                };
                let mut stream = docker.stats(&stream_id, Some(options));
                while let Some(Ok(s)) = stream.next().await {
                    let (cpu, memory) = cpu_and_memory(&s);
                    if tx
                        .send(Live::Stats {
                            id: stream_id.clone(),
                            cpu,
                            memory,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            });
            self.stats.insert(id, task);
        }
        let ids: HashSet<&String> = self.rows.keys().collect();
        self.probe_due.retain(|id, _| ids.contains(id));
    }

    fn probe_due_servers(&mut self) {
        let now = Instant::now();
        for row in self.rows.values() {
            let Some(endpoint) = row.endpoint.clone() else {
                continue;
            };
            let due = self.probe_due.get(&row.id).is_none_or(|at| *at <= now);
            if !due || self.probing.contains(&row.id) {
                continue;
            }
            self.probing.insert(row.id.clone());
            // Not due again until this answer arrives.
            self.probe_due.insert(row.id.clone(), now + HEALTH_EVERY);
            let tx = self.live.clone();
            let id = row.id.clone();
            let server = row.title().to_string();
            tokio::spawn(async move {
                let health = probe(&server, &endpoint).await;
                let _ = tx.send(Live::Health {
                    id,
                    endpoint,
                    health,
                });
            });
        }
    }

    fn stop_all(&mut self) {
        for (_, task) in self.stats.drain() {
            task.abort();
        }
    }
}

/// An MCP `initialize` and `tools/list` round trip on a fresh connection.
pub async fn probe(server: &str, endpoint: &str) -> Health {
    let clients = McpClients::new([(server.to_string(), endpoint.to_string())], PROBE_TIMEOUT)
        .with_connect_timeout(PROBE_TIMEOUT);
    let started = Instant::now();
    match clients.probe(server).await {
        Ok(tools) => Health::Healthy {
            tools,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        Err(e) => Health::Unhealthy {
            reason: e.to_string(),
        },
    }
}

/// CPU as a percentage of one core (as `docker stats` shows it) and memory in use.
pub fn cpu_and_memory(s: &bollard::models::ContainerStatsResponse) -> (Option<f64>, Option<u64>) {
    let cpu = (|| {
        let now = s.cpu_stats.as_ref()?;
        let before = s.precpu_stats.as_ref()?;
        let used = now.cpu_usage.as_ref()?.total_usage? as f64
            - before.cpu_usage.as_ref()?.total_usage? as f64;
        let system = now.system_cpu_usage? as f64 - before.system_cpu_usage? as f64;
        let cpus = now.online_cpus.filter(|n| *n > 0).unwrap_or(1) as f64;
        (system > 0.0 && used >= 0.0).then(|| used / system * cpus * 100.0)
    })();
    let memory = s.memory_stats.as_ref().and_then(|m| {
        // What `docker stats` shows: usage less the page cache it could drop.
        let cache = m
            .stats
            .as_ref()
            .and_then(|st| {
                st.get("inactive_file")
                    .or_else(|| st.get("total_inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        m.usage.map(|u| u.saturating_sub(cache))
    });
    (cpu, memory)
}
