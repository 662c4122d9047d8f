//! Tool servers started inside ecca's own process, on loopback, when no registry is
//! configured: vector-code, linter and code-execution. They are real MCP servers over
//! HTTP, the same the containers run; they only save the operator starting them by hand.

use super::client::McpClients;
use super::servers::{self, Running, code_execution::CodeExecution, linter::Linter, vector_code};
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
        let execution = CodeExecution::new(None).with_worktrees(data_dir.join("worktrees"));
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
