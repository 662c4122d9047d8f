//! Tool servers started inside ecca's own process, on loopback, when no registry is
//! configured: vector-code, linter, code-execution, and code-context and code-assistant
//! confined to the runs' worktrees directory. They are real MCP servers over
//! HTTP, the same the containers run; they only save the operator starting them by hand.

use super::client::McpClients;
use super::servers::{
    self, Running, code_assistant::CodeAssistant, code_context::CodeContext,
    code_execution::CodeExecution, confine::Root, linter::Linter, vector_code,
};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub struct EmbeddedServers {
    running: Vec<(String, Running)>,
    execution: CodeExecution,
}

impl EmbeddedServers {
    pub async fn start(data_dir: &Path) -> Result<EmbeddedServers, String> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let vectors = vector_code::VectorCode::open(data_dir, vector_code::Embedder::Local)?;
        let worktrees = crate::repo::worktree::worktrees_dir(data_dir);
        crate::store::create_private_dir(&worktrees).map_err(|e| e.0)?;
        let execution = CodeExecution::new(None).with_worktrees(worktrees.clone());
        // Runs in clients' repositories read and change their worktree through these; each
        // is confined to the worktrees directory, and a run names only its own worktree.
        let context = CodeContext::new(Root::new(&worktrees)?);
        let assistant = CodeAssistant::new(Root::new(&worktrees)?);
        // Sandboxes an earlier process was killed in the middle of running.
        execution.sweep_leftovers().await;
        let running = vec![
            (
                "vector-code".to_string(),
                servers::serve(any, move || vectors.clone()).await?,
            ),
            (
                "linter".to_string(),
                servers::serve(any, Linter::new).await?,
            ),
            (
                "code-execution".to_string(),
                servers::serve(any, {
                    let execution = execution.clone();
                    move || execution.clone()
                })
                .await?,
            ),
            (
                "code-context".to_string(),
                servers::serve(any, move || context.clone()).await?,
            ),
            (
                "code-assistant".to_string(),
                servers::serve(any, move || assistant.clone()).await?,
            ),
        ];
        Ok(EmbeddedServers { running, execution })
    }

    /// A client manager for these servers. Sandbox runs are allowed up to five minutes.
    pub fn clients(&self) -> McpClients {
        McpClients::new(
            self.running.iter().map(|(n, r)| (n.clone(), r.url.clone())),
            Duration::from_secs(330),
        )
    }

    /// Stops the sandbox runs in flight (answering their calls), then the servers.
    pub async fn stop(self) {
        self.execution.shutdown().await;
        for (_, r) in self.running {
            r.stop().await;
        }
    }
}
