//! The operator's container actions, as commands: the console's dialogs decide, this acts.
//! Each outcome is announced, and each Docker failure is one sentence.

use super::{Event, Reply, Supervisor, SupervisorError};
use crate::containers::Engine;
use crate::containers::images::{Which, build};
use crate::containers::managed::ContainerVerb;
use crate::containers::servers::launch_spec;
use crate::mcp::registry::Registry;

async fn engine() -> Result<Engine, SupervisorError> {
    Engine::connect().await.map_err(|e| SupervisorError(e.0))
}

impl Supervisor {
    pub(super) async fn container(
        &self,
        name: &str,
        verb: ContainerVerb,
    ) -> Result<Reply, SupervisorError> {
        let row = engine()
            .await?
            .act_on(name, verb)
            .await
            .map_err(|e| SupervisorError(e.0))?;
        tracing::info!(container = %row.name, "container {}", verb.done());
        self.inner.bus.publish(Event::ContainerChanged {
            name: row.name,
            verb: verb.word().into(),
        });
        Ok(Reply::Done)
    }

    pub(super) async fn start_server(
        &self,
        server: &str,
        client: Option<&str>,
    ) -> Result<Reply, SupervisorError> {
        let data_dir = self.data_dir().to_path_buf();
        let registry = Registry::of_data_dir(&data_dir).map_err(SupervisorError)?;
        // code-context and code-assistant serve the repository ecca was started in.
        let project = std::env::current_dir()
            .map_err(|e| SupervisorError(format!("could not read the current directory: {e}")))?;
        let secret = |name: &str| crate::secrets::server_secret(&data_dir, name);
        let spec = launch_spec(server, client, &registry, &data_dir, &project, &secret)
            .map_err(SupervisorError)?;
        let row = engine()
            .await?
            .launch_server(&spec)
            .await
            .map_err(|e| SupervisorError(e.0))?;
        self.inner.bus.publish(Event::ContainerChanged {
            name: row.name,
            verb: "start".into(),
        });
        Ok(Reply::Done)
    }

    pub(super) async fn build_images(&self) -> Result<Reply, SupervisorError> {
        let engine = engine().await?;
        let bus = self.inner.bus.clone();
        let progress = move |line: &str| {
            bus.publish(Event::ImagesProgress { line: line.into() });
        };
        build(&engine, Which::Both, true, &progress)
            .await
            .map_err(|e| SupervisorError(e.0))?;
        Ok(Reply::Done)
    }
}
