//! The one door to Docker. Everything ecca does with containers goes through [`Engine`]:
//! importing images, running untrusted code in a sandbox (`sandbox`), and managing the
//! containers it labelled. The daemon's API version is negotiated, so older engines
//! (Debian's 20.10) work as well as new ones.

pub mod images;
pub mod launch;
pub mod managed;
pub mod node_tools;
mod sandbox;
pub mod servers;
pub mod watch;

pub use sandbox::{LABEL_DEADLINE, SandboxOutcome, SandboxSpec};

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, KillContainerOptions};
use futures::StreamExt;

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

    /// A label of an image, when the image exists and has it.
    pub async fn image_label(&self, image: &str, key: &str) -> Option<String> {
        let inspect = self.docker.inspect_image(image).await.ok()?;
        inspect.config?.labels?.get(key).cloned()
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

    async fn kill(&self, id: &str) {
        let options = KillContainerOptions {
            signal: "KILL".into(),
        };
        if let Err(e) = self.docker.kill_container(id, Some(options)).await {
            tracing::debug!("kill of {id}: {e}");
        }
    }
}
