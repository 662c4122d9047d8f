//! Where the console's supervisor is: in this process (`--in-process`, tests, `--demo`),
//! or in `ecca serve`, reached over its socket. Views read the store file either way; the
//! link carries commands, the event stream and the little state that lives only in the
//! supervisor's memory (money held by in-flight calls, tool-call counts).

use crate::config::Config;
use crate::engine::tools::ToolCallStats;
pub use crate::supervisor::socket::Events;
use crate::supervisor::socket::Remote;
use crate::supervisor::{Command, Supervisor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub enum Link {
    Local(Supervisor),
    /// `ecca serve` of `data_dir`; a connection per request, so a daemon that restarts is
    /// found again by the next one.
    Daemon {
        data_dir: PathBuf,
        config: Box<Config>,
    },
}

fn gone(data_dir: &Path) -> String {
    format!(
        "ecca serve for {} does not answer; the console reattaches when it is back (`ecca serve` starts it)",
        data_dir.display()
    )
}

impl Link {
    pub fn config(&self) -> &Config {
        match self {
            Link::Local(sup) => sup.config(),
            Link::Daemon { config, .. } => config,
        }
    }

    pub fn data_dir(&self) -> &Path {
        match self {
            Link::Local(sup) => sup.data_dir(),
            Link::Daemon { data_dir, .. } => data_dir,
        }
    }

    pub fn is_daemon(&self) -> bool {
        matches!(self, Link::Daemon { .. })
    }

    async fn remote(data_dir: &Path) -> Result<Remote, String> {
        Remote::connect(data_dir)
            .await
            .ok_or_else(|| gone(data_dir))
    }

    pub async fn execute(&self, command: Command) -> Result<(), String> {
        match self {
            Link::Local(sup) => sup.execute(command).await.map(|_| ()).map_err(|e| e.0),
            Link::Daemon { data_dir, .. } => Self::remote(data_dir)
                .await?
                .execute(command)
                .await
                .map(|_| ()),
        }
    }

    /// A new subscription to the supervisor's events; for the daemon, `None` while it
    /// does not answer.
    pub async fn subscribe(&self) -> Option<Events> {
        match self {
            Link::Local(sup) => Some(Events::Local(sup.subscribe())),
            Link::Daemon { data_dir, .. } => {
                let remote = Remote::connect(data_dir).await?;
                remote.subscribe().await.ok().map(Events::Daemon)
            }
        }
    }

    /// Money held by in-flight calls, per client (none while the daemon is away).
    pub async fn reserved(&self) -> BTreeMap<String, i64> {
        match self {
            Link::Local(sup) => sup.reserved_by_client(),
            Link::Daemon { data_dir, .. } => match Self::remote(data_dir).await {
                Ok(mut r) => r.reserved().await.unwrap_or_default(),
                Err(_) => BTreeMap::new(),
            },
        }
    }

    /// Which tool servers back the engine, in one line for the header.
    pub async fn tools_description(&self) -> Result<String, String> {
        match self {
            Link::Local(sup) => Ok(sup.tools_description()),
            Link::Daemon { data_dir, .. } => {
                Self::remote(data_dir).await?.tools_description().await
            }
        }
    }

    pub async fn tool_stats(&self) -> Vec<ToolCallStats> {
        match self {
            Link::Local(sup) => sup.tool_stats(),
            Link::Daemon { data_dir, .. } => match Self::remote(data_dir).await {
                Ok(mut r) => r.tool_stats().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            },
        }
    }
}
