//! Starting a tool server in a container, hardened the same way whoever wrote it: no new
//! privileges, every capability dropped, a read-only root with a small tmpfs, memory, CPU
//! and process limits, ecca's labels. A server whose registry entry allows no egress runs
//! on an internal network (`ecca-isolated`): the host reaches it at its own address, it
//! reaches nothing.

use super::managed::{ContainerRow, LABEL_CLIENT, LABEL_PORT, LABEL_SERVER, docker_message};
use super::{ContainerError, Engine, LABEL_MANAGED, LABEL_ROLE};
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkCreateRequest, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptions, StartContainerOptions,
};
use std::collections::HashMap;

/// The internal network of servers allowed no egress.
pub const ISOLATED_NETWORK: &str = "ecca-isolated";

/// Everything needed to run one server.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// The registry's name for it (`linter`, `acme-tools`, `client-github`).
    pub server: String,
    /// The container's name (`ecca-linter`, `ecca-client-github-acme`).
    pub container_name: String,
    pub image: String,
    /// Arguments after the image's entrypoint; empty keeps the image's own command.
    pub cmd: Vec<String>,
    /// The port the MCP endpoint listens on inside.
    pub port: u16,
    /// With egress: the port it is published on at 127.0.0.1.
    pub publish: Option<u16>,
    /// Environment, secrets already decrypted (never logged or shown).
    pub env: Vec<(String, String)>,
    /// `(source on the host or volume name, target, read_only)`.
    pub binds: Vec<(String, String, bool)>,
    pub client: Option<String>,
    pub egress: bool,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
}

impl LaunchSpec {
    /// The container's create request (also what the hardening test inspects).
    pub fn body(&self) -> ContainerCreateBody {
        let mut labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_ROLE.to_string(), "server".to_string()),
            (LABEL_SERVER.to_string(), self.server.clone()),
            (LABEL_PORT.to_string(), self.port.to_string()),
        ]);
        if let Some(c) = &self.client {
            labels.insert(LABEL_CLIENT.to_string(), c.clone());
        }
        let port_key = format!("{}/tcp", self.port);
        let (network_mode, port_bindings) = match (self.egress, self.publish) {
            (true, Some(public)) => (
                "bridge".to_string(),
                Some(HashMap::from([(
                    port_key.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        // 0: any free port.
                        host_port: (public > 0).then(|| public.to_string()),
                    }]),
                )])),
            ),
            (true, None) => ("bridge".to_string(), None),
            (false, _) => (ISOLATED_NETWORK.to_string(), None),
        };
        let mounts = self
            .binds
            .iter()
            .map(|(source, target, read_only)| Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(if source.starts_with('/') {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                read_only: Some(*read_only),
                ..Default::default()
            })
            .collect();
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(HostConfig {
                network_mode: Some(network_mode),
                port_bindings,
                memory: Some(self.memory_bytes),
                memory_swap: Some(self.memory_bytes),
                nano_cpus: Some(self.nano_cpus),
                pids_limit: Some(self.pids_limit),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    "rw,size=64m,mode=1777".to_string(),
                )])),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                mounts: Some(mounts),
                restart_policy: Some(bollard::models::RestartPolicy {
                    name: Some(bollard::models::RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(3),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Engine {
    /// Creates the isolated network when it is missing.
    async fn ensure_isolated_network(&self) -> Result<(), ContainerError> {
        if self
            .docker
            .inspect_network(
                ISOLATED_NETWORK,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_ok()
        {
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: ISOLATED_NETWORK.into(),
            internal: Some(true),
            labels: Some(HashMap::from([(
                LABEL_MANAGED.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Made by another ecca at the same moment.
            Err(e) if docker_message(&e).contains("already exists") => Ok(()),
            Err(e) => Err(ContainerError(format!(
                "could not create the network {ISOLATED_NETWORK}: {}",
                docker_message(&e)
            ))),
        }
    }

    /// Starts a server: a stopped container of the same name is replaced (its settings
    /// may have changed); a running one is an error that says so.
    pub async fn launch_server(&self, spec: &LaunchSpec) -> Result<ContainerRow, ContainerError> {
        if !self.image_exists(&spec.image).await {
            return Err(ContainerError(format!(
                "the image {} is not on this machine; build it with `ecca images build` or load it with `docker load`",
                spec.image
            )));
        }
        let name = spec.container_name.as_str();
        if let Ok(existing) = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            if existing.state.as_ref().and_then(|s| s.running) == Some(true) {
                return Err(ContainerError(format!(
                    "{name} is already running; restart it instead"
                )));
            }
            self.docker
                .remove_container(
                    name,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| {
                    ContainerError(format!(
                        "could not replace the stopped {name}: {}",
                        docker_message(&e)
                    ))
                })?;
        }
        if !spec.egress {
            self.ensure_isolated_network().await?;
        }
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), spec.body())
            .await
            .map_err(|e| {
                ContainerError(format!("could not create {name}: {}", docker_message(&e)))
            })?;
        if let Err(e) = self
            .docker
            .start_container(name, None::<StartContainerOptions>)
            .await
        {
            // Nothing half-made stays behind.
            let _ = self
                .docker
                .remove_container(
                    name,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(ContainerError(format!(
                "could not start {name}: {}",
                docker_message(&e)
            )));
        }
        self.inspect_row(name).await
    }
}
