//! The containers ecca manages: those it labelled `ecca.managed=true` (its tool servers,
//! third-party servers from the registry, the compose project's services) listed with what
//! an operator needs, and the actions on them. Sandboxes carry the label too but come and
//! go with each program; they are counted, not listed.

use super::{ContainerError, Engine, LABEL_MANAGED, LABEL_ROLE};
use bollard::models::ContainerInspectResponse;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::LogsOptions;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use futures::{Stream, StreamExt};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The tool server a container runs (`code-context`, a registry name, `client-github`).
pub const LABEL_SERVER: &str = "ecca.server";
/// The client a client-github instance serves.
pub const LABEL_CLIENT: &str = "ecca.client";
/// The port the MCP endpoint listens on inside the container.
pub const LABEL_PORT: &str = "ecca.port";
/// What docker-compose (1.x and 2.x) labels a service's containers with.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// A server's health: an MCP `initialize` and `tools/list` round trip.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum Health {
    /// Not asked yet (just started or listed).
    Unknown,
    Healthy {
        tools: usize,
        latency_ms: f64,
    },
    Unhealthy {
        reason: String,
    },
    /// The container is not running, or serves no MCP endpoint.
    None,
}

impl Health {
    pub fn label(&self) -> String {
        match self {
            Health::Unknown => "checking".into(),
            Health::Healthy { latency_ms, .. } => format!("healthy {latency_ms:.0} ms"),
            Health::Unhealthy { .. } => "unhealthy".into(),
            Health::None => "–".into(),
        }
    }
}

/// One managed container, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerRow {
    /// The first 12 hex digits of its id.
    pub id: String,
    pub name: String,
    pub server: Option<String>,
    pub client: Option<String>,
    pub compose_service: Option<String>,
    pub image: String,
    /// Docker's state: `running`, `exited`, `created`, `restarting`, `paused`, `dead`.
    pub state: String,
    /// Published ports, `127.0.0.1:8100→8100`.
    pub ports: Vec<String>,
    /// The MCP endpoint ecca reaches it at, when it serves one.
    pub endpoint: Option<String>,
    pub restarts: i64,
    /// When it last started (ms since the epoch), while running.
    pub started_at_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub memory_limit: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub health: Health,
}

impl ContainerRow {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// What the operator calls it: the compose service, the server, else the name.
    pub fn title(&self) -> &str {
        self.compose_service
            .as_deref()
            .or(self.server.as_deref())
            .unwrap_or(&self.name)
    }
}

/// An action on a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerVerb {
    Start,
    Stop,
    Restart,
    Remove,
}

impl ContainerVerb {
    pub fn word(self) -> &'static str {
        match self {
            ContainerVerb::Start => "start",
            ContainerVerb::Stop => "stop",
            ContainerVerb::Restart => "restart",
            ContainerVerb::Remove => "remove",
        }
    }

    pub fn done(self) -> &'static str {
        match self {
            ContainerVerb::Start => "started",
            ContainerVerb::Stop => "stopped",
            ContainerVerb::Restart => "restarted",
            ContainerVerb::Remove => "removed",
        }
    }
}

/// Memory in use against its limit: `112 MiB / 512 MiB`, `–` when unknown.
pub fn format_memory(used: Option<u64>, limit: Option<u64>) -> String {
    let mib = |b: u64| {
        let m = b as f64 / (1024.0 * 1024.0);
        if m >= 1024.0 {
            format!("{:.1} GiB", m / 1024.0)
        } else {
            format!("{m:.0} MiB")
        }
    };
    match (used, limit) {
        (Some(u), Some(l)) => format!("{} / {}", mib(u), mib(l)),
        (Some(u), None) => mib(u),
        (None, Some(l)) => format!("– / {}", mib(l)),
        (None, None) => "–".into(),
    }
}

/// The engine's message in a bollard error (`No such container: x`), without the status
/// code boilerplate.
pub fn docker_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn millis_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
        .filter(|ms| *ms > 0)
}

/// A row from an inspection; live figures (CPU, memory, health) start empty.
pub fn row_of(inspect: &ContainerInspectResponse) -> ContainerRow {
    let config = inspect.config.as_ref();
    let labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned();
    let state = inspect.state.as_ref();
    let state_word = state
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let running = state_word == "running";
    let network = inspect.network_settings.as_ref();
    let mut ports = Vec::new();
    let mut published: HashMap<u16, u16> = HashMap::new();
    if let Some(map) = network.and_then(|n| n.ports.as_ref()) {
        for (inside, bindings) in map {
            let private: u16 = inside
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            for b in bindings.iter().flatten() {
                let public: u16 = b
                    .host_port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                let ip = b.host_ip.as_deref().unwrap_or("0.0.0.0");
                ports.push(format!("{ip}:{public}→{private}"));
                published.insert(private, public);
            }
        }
    }
    ports.sort();
    ports.dedup();
    let server = label(LABEL_SERVER);
    // The MCP port inside: the label, else the one port a server publishes.
    let mcp_port: Option<u16> = label(LABEL_PORT)
        .and_then(|p| p.parse().ok())
        .or_else(|| (published.len() == 1).then(|| published.keys().next().copied())?);
    let endpoint = server.as_ref().and(mcp_port).and_then(|port| {
        if let Some(public) = published.get(&port).filter(|p| **p > 0) {
            return Some(format!("http://127.0.0.1:{public}/mcp"));
        }
        // Not published (an isolated network): the container's own address, which the
        // host reaches over the network's bridge.
        let ip = network
            .and_then(|n| n.networks.as_ref())
            .and_then(|nets| nets.values().find_map(|n| n.ip_address.clone()))
            .filter(|ip| !ip.is_empty())?;
        Some(format!("http://{ip}:{port}/mcp"))
    });
    let host = inspect.host_config.as_ref();
    ContainerRow {
        id: inspect
            .id
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(12)
            .collect(),
        name: inspect
            .name
            .as_deref()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string(),
        client: label(LABEL_CLIENT),
        compose_service: label(COMPOSE_SERVICE),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        state: state_word,
        ports,
        endpoint: if running { endpoint } else { None },
        restarts: inspect.restart_count.unwrap_or(0),
        started_at_ms: state
            .and_then(|s| s.started_at.as_deref())
            .filter(|_| running)
            .and_then(millis_of),
        exit_code: state.and_then(|s| s.exit_code).filter(|_| !running),
        memory_limit: host
            .and_then(|h| h.memory)
            .filter(|m| *m > 0)
            .map(|m| m as u64),
        cpu_percent: None,
        memory_bytes: None,
        health: if running && server.is_some() {
            Health::Unknown
        } else {
            Health::None
        },
        server,
    }
}

/// Whether a container's labels make it a sandbox (listed only as a count).
pub fn is_sandbox(labels: &HashMap<String, String>) -> bool {
    labels.get(LABEL_ROLE).map(String::as_str) == Some("sandbox")
}

impl Engine {
    /// Every managed container that is not a sandbox, inspected, by name; and the short
    /// ids of the sandboxes running now.
    pub async fn managed_containers(
        &self,
    ) -> Result<(Vec<ContainerRow>, HashSet<String>), ContainerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{LABEL_MANAGED}=true")],
            )])),
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| {
                ContainerError(format!("could not list containers: {}", docker_message(&e)))
            })?;
        let mut rows = Vec::new();
        let mut sandboxes = HashSet::new();
        for c in listed {
            if c.labels.as_ref().is_some_and(is_sandbox) {
                if c.state == Some(ContainerSummaryStateEnum::RUNNING) {
                    sandboxes.insert(c.id.unwrap_or_default().chars().take(12).collect());
                }
                continue;
            }
            let Some(id) = c.id else { continue };
            // Gone between the list and the inspection: not listed.
            if let Ok(row) = self.inspect_row(&id).await {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| a.title().cmp(b.title()).then(a.name.cmp(&b.name)));
        Ok((rows, sandboxes))
    }

    /// One container as a row (by id or name).
    pub async fn inspect_row(&self, id: &str) -> Result<ContainerRow, ContainerError> {
        let inspect = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| {
                ContainerError(format!("could not inspect {id}: {}", docker_message(&e)))
            })?;
        Ok(row_of(&inspect))
    }

    /// The id of a managed container called `name`: its container name, id, compose
    /// service or server name.
    pub async fn resolve_managed(&self, name: &str) -> Result<ContainerRow, ContainerError> {
        let (rows, _) = self.managed_containers().await?;
        let exact = rows
            .iter()
            .find(|r| r.name == name || (name.len() >= 4 && r.id.starts_with(name)));
        if let Some(r) = exact {
            return Ok(r.clone());
        }
        let by_title: Vec<&ContainerRow> = rows
            .iter()
            .filter(|r| {
                r.compose_service.as_deref() == Some(name) || r.server.as_deref() == Some(name)
            })
            .collect();
        match by_title.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError(format!(
                "no container ecca manages is called {name}; `ecca containers list` shows them"
            ))),
            many => Err(ContainerError(format!(
                "{name} names {} containers ({}); give the container's name",
                many.len(),
                many.iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Starts, stops, restarts or removes a managed container; the error is one sentence.
    pub async fn act_on(
        &self,
        name: &str,
        verb: ContainerVerb,
    ) -> Result<ContainerRow, ContainerError> {
        let row = self.resolve_managed(name).await?;
        let id = row.id.as_str();
        let result = match verb {
            ContainerVerb::Start => {
                self.docker
                    .start_container(id, None::<StartContainerOptions>)
                    .await
            }
            ContainerVerb::Stop => {
                self.docker
                    .stop_container(
                        id,
                        Some(StopContainerOptions {
                            t: Some(10),
                            signal: None,
                        }),
                    )
                    .await
            }
            ContainerVerb::Restart => {
                self.docker
                    .restart_container(
                        id,
                        Some(RestartContainerOptions {
                            t: Some(10),
                            signal: None,
                        }),
                    )
                    .await
            }
            ContainerVerb::Remove => {
                self.docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: false,
                            link: false,
                        }),
                    )
                    .await
            }
        };
        result.map_err(|e| {
            ContainerError(format!(
                "could not {} {}: {}",
                verb.word(),
                row.name,
                docker_message(&e)
            ))
        })?;
        Ok(row)
    }
}

impl Engine {
    /// A container's log lines (stdout and stderr), the last `tail` of them, then new
    /// ones while `follow`.
    pub fn log_lines(
        &self,
        id: &str,
        follow: bool,
        tail: usize,
    ) -> impl Stream<Item = Result<String, ContainerError>> + Send + 'static {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let name = id.to_string();
        let mut partial = String::new();
        self.docker.logs(id, Some(options)).flat_map(move |chunk| {
            let lines: Vec<Result<String, ContainerError>> = match chunk {
                Ok(out) => {
                    partial.push_str(&String::from_utf8_lossy(&out.into_bytes()));
                    let mut done = Vec::new();
                    while let Some(at) = partial.find('\n') {
                        let line: String = partial.drain(..=at).collect();
                        done.push(Ok(line.trim_end_matches(['\n', '\r']).to_string()));
                    }
                    done
                }
                Err(e) => vec![Err(ContainerError(format!(
                    "could not read the logs of {name}: {}",
                    docker_message(&e)
                )))],
            };
            futures::stream::iter(lines)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compose_service_is_named_by_its_service_and_reached_on_its_published_port() {
        let inspect: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
            "Id": "0123456789abcdef0123",
            "Name": "/compose_linter_1",
            "RestartCount": 2,
            "State": {"Status": "running", "Running": true, "StartedAt": "2026-11-22T10:00:00.5Z"},
            "Config": {"Image": "ecca-mcp:latest", "Labels": {
                "ecca.managed": "true", "ecca.server": "linter",
                "com.docker.compose.service": "linter"}},
            "HostConfig": {"Memory": 268435456},
            "NetworkSettings": {"Ports": {"8104/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8104"}]}}
        }))
        .unwrap();
        let row = row_of(&inspect);
        assert_eq!(row.id, "0123456789ab");
        assert_eq!(row.title(), "linter");
        assert_eq!(row.endpoint.as_deref(), Some("http://127.0.0.1:8104/mcp"));
        assert_eq!(row.ports, vec!["127.0.0.1:8104→8104"]);
        assert_eq!(row.restarts, 2);
        assert_eq!(row.memory_limit, Some(268435456));
        assert!(row.started_at_ms.is_some());
        assert_eq!(row.health, Health::Unknown);
    }

    #[test]
    fn an_isolated_server_is_reached_at_its_address_and_a_stopped_one_not_at_all() {
        let mut value = serde_json::json!({
            "Id": "fedcba9876543210",
            "Name": "/ecca-acme-tools",
            "State": {"Status": "running", "Running": true},
            "Config": {"Image": "acme/tools:1", "Labels": {"ecca.server": "acme-tools", "ecca.port": "9000"}},
            "NetworkSettings": {"Networks": {"ecca-isolated": {"IPAddress": "172.30.0.2"}}}
        });
        let row = row_of(&serde_json::from_value(value.clone()).unwrap());
        assert_eq!(row.endpoint.as_deref(), Some("http://172.30.0.2:9000/mcp"));
        value["State"] = serde_json::json!({"Status": "exited", "Running": false, "ExitCode": 137});
        let row = row_of(&serde_json::from_value(value).unwrap());
        assert_eq!(row.endpoint, None);
        assert_eq!(row.exit_code, Some(137));
        assert_eq!(row.health, Health::None);
    }
}
