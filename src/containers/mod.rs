//! The one door to Docker. Everything ecca does with containers goes through [`Engine`]:
//! importing images, running untrusted code in a sandbox, and managing the containers it
//! labelled. The daemon's API version is negotiated, so older engines (Debian's 20.10)
//! work as well as new ones.

pub mod images;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    ListContainersOptions, RemoveContainerOptions,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A Docker failure, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContainerError(pub String);

/// Labels on everything ecca creates.
pub const LABEL_MANAGED: &str = "ecca.managed";
pub const LABEL_ROLE: &str = "ecca.role";

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What to run in the sandbox, and its limits.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub image: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Duration,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// Bytes of stdout plus stderr kept; past this the program is stopped.
    pub output_cap: usize,
}

impl SandboxSpec {
    /// The default limits: 256 MiB, half a CPU, 64 processes, 30 s, 1 MiB of output.
    pub fn new(image: &str, cmd: Vec<String>) -> Self {
        SandboxSpec {
            image: image.to_string(),
            cmd,
            env: Vec::new(),
            timeout: Duration::from_secs(30),
            memory_bytes: 256 * 1024 * 1024,
            nano_cpus: 500_000_000,
            pids_limit: 64,
            output_cap: 1024 * 1024,
        }
    }
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOutcome {
    /// The container's short id (already removed when the outcome is returned).
    pub container_id: String,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub duration: Duration,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub output_truncated: bool,
}

impl Engine {
    /// Connects to the local engine (DOCKER_HOST or /var/run/docker.sock) and agrees on an
    /// API version with it.
    pub async fn connect() -> Result<Engine, ContainerError> {
        let unreachable = |e: &dyn std::fmt::Display| {
            ContainerError(format!(
                "no Docker engine answers at {} ({e}); start one (on Debian: apt-get install docker.io, then dockerd)",
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
            ))
        };
        let docker = Docker::connect_with_local_defaults().map_err(|e| unreachable(&e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&e))?;
        docker.ping().await.map_err(|e| unreachable(&e))?;
        Ok(Engine { docker })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub async fn image_exists(&self, image: &str) -> bool {
        self.docker.inspect_image(image).await.is_ok()
    }

    /// Imports a root filesystem tarball as `repo:tag` (what `docker import` does), with
    /// Dockerfile-style `changes` such as `ENTRYPOINT [...]`.
    pub async fn import_rootfs(
        &self,
        tar: Vec<u8>,
        repo: &str,
        tag: &str,
        changes: Vec<String>,
    ) -> Result<(), ContainerError> {
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            changes,
            ..Default::default()
        };
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(tar.into())), None);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                return Err(ContainerError(format!(
                    "importing {repo}:{tag} failed: {e}"
                )));
            }
        }
        Ok(())
    }

    /// Runs `spec` in a fresh container: no network, read-only root with a writable
    /// `/scratch`, no capabilities, as `nobody`, within the memory, CPU, process, time and
    /// output limits. The container is removed afterwards.
    pub async fn run_sandboxed(
        &self,
        spec: &SandboxSpec,
    ) -> Result<SandboxOutcome, ContainerError> {
        if !self.image_exists(&spec.image).await {
            return Err(ContainerError(format!(
                "the sandbox image {} is not in the Docker engine; build it with `ecca images build`",
                spec.image
            )));
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.clone()),
            user: Some("65534:65534".into()),
            working_dir: Some("/scratch".into()),
            network_disabled: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            labels: Some(HashMap::from([
                (LABEL_MANAGED.to_string(), "true".to_string()),
                (LABEL_ROLE.to_string(), "sandbox".to_string()),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                memory: Some(spec.memory_bytes),
                memory_swap: Some(spec.memory_bytes),
                nano_cpus: Some(spec.nano_cpus),
                pids_limit: Some(spec.pids_limit),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([
                    (
                        "/scratch".to_string(),
                        "rw,exec,size=64m,mode=1777".to_string(),
                    ),
                    ("/tmp".to_string(), "rw,size=16m,mode=1777".to_string()),
                ])),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // Output is read live through attach; nothing is kept on the engine's disk.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions::default()), body)
            .await
            .map_err(|e| ContainerError(format!("could not create a sandbox container: {e}")))?;
        let id = created.id;
        let result = self.run_created(&id, spec).await;
        // Removed before returning, as `docker run --rm` does: a removal left to the
        // background dies with a short-lived process and leaks the container.
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = self.docker.remove_container(&id, Some(options)).await {
            tracing::warn!("could not remove sandbox container {id}: {e}");
        }
        result
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &SandboxSpec,
    ) -> Result<SandboxOutcome, ContainerError> {
        let attach = AttachContainerOptions {
            stream: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut attached = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(|e| ContainerError(format!("could not attach to the sandbox: {e}")))?;
        let started = Instant::now();
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| ContainerError(format!("could not start the sandbox: {e}")))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut truncated = false;
        let mut timed_out = false;
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                chunk = attached.output.next() => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => stdout.extend_from_slice(&message),
                    Some(Ok(LogOutput::StdErr { message })) => stderr.extend_from_slice(&message),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!("sandbox output stream broke: {e}");
                        break;
                    }
                    None => break,
                },
                _ = &mut deadline => {
                    timed_out = true;
                    break;
                }
            }
            if stdout.len() + stderr.len() > spec.output_cap {
                truncated = true;
                break;
            }
        }
        if timed_out || truncated {
            // The engine only reports a kill done once the program's output is flushed, so
            // keep reading (and dropping) the output while the kill goes through.
            let engine = self.clone();
            let target = id.to_string();
            let kill = tokio::spawn(async move { engine.kill(&target).await });
            let drain = async { while attached.output.next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
            let _ = kill.await;
        }
        let duration = started.elapsed();
        // The program has ended or been killed; wait for the engine to record its state.
        let mut wait = self.docker.wait_container(id, None);
        let _ = tokio::time::timeout(Duration::from_secs(10), wait.next()).await;
        let state = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| ContainerError(format!("could not read the sandbox's exit state: {e}")))?
            .state
            .unwrap_or_default();
        let cap = spec.output_cap;
        Ok(SandboxOutcome {
            container_id: id.chars().take(12).collect(),
            stdout: capped(stdout, cap, truncated),
            stderr: capped(stderr, cap, truncated),
            exit_code: if timed_out || truncated {
                None
            } else {
                state.exit_code
            },
            duration,
            timed_out,
            oom_killed: state.oom_killed.unwrap_or(false),
            output_truncated: truncated,
        })
    }

    /// Removes sandbox containers a previous process left behind (it died before it could
    /// remove them): those that exited more than a minute ago. A live process removes its
    /// own within milliseconds, so nothing in use is touched. Returns how many went.
    pub async fn sweep_sandboxes(&self) -> usize {
        let filters = HashMap::from([
            ("label".to_string(), vec![format!("{LABEL_ROLE}=sandbox")]),
            (
                "status".to_string(),
                vec!["exited".to_string(), "dead".to_string()],
            ),
        ]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = match self.docker.list_containers(Some(options)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("could not list sandbox containers: {e}");
                return 0;
            }
        };
        let cutoff = chrono::Utc::now().timestamp() - 60;
        let mut removed = 0;
        for c in list {
            if let (Some(id), true) = (c.id, c.created.is_some_and(|t| t < cutoff)) {
                let options = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                if self
                    .docker
                    .remove_container(&id, Some(options))
                    .await
                    .is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    async fn kill(&self, id: &str) {
        let options = KillContainerOptions {
            signal: "KILL".into(),
        };
        if let Err(e) = self.docker.kill_container(id, Some(options)).await {
            tracing::debug!("kill of {id}: {e}");
        }
    }
}

fn capped(mut bytes: Vec<u8>, cap: usize, truncated: bool) -> String {
    let over = bytes.len() > cap;
    bytes.truncate(cap);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if over || (truncated && !text.is_empty()) {
        text.push_str(&format!(
            "\n[output cut by ecca at {} KiB: the program wrote more and was stopped]\n",
            cap / 1024
        ));
    }
    text
}
