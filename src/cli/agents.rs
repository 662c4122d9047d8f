//! `ecca agents check`: which third-party coding agents are installed at the versions ecca
//! reads, and whether each has what it needs to run (its program, a key).

use super::Setup;
use crate::agents::registry::{self, check_installed};
use serde_json::json;

#[derive(Debug, clap::Subcommand)]
pub enum AgentsCommand {
    /// Say which agents are installed and usable; exits 1 if any is not.
    Check {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Check with this client's stored keys (`ecca credentials add`) as its runs get
        /// them, else ecca's own.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
}

pub fn run(setup: &Setup, command: AgentsCommand) -> Result<(), String> {
    let AgentsCommand::Check { json, client } = command;
    let dir = setup
        .config
        .agents
        .dir
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(registry::default_agents_dir);
    if let Some(id) = &client {
        let store = crate::store::Store::open(&setup.data_dir).map_err(|e| e.0)?;
        super::existing_client(&store, id)?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let mut rows = Vec::new();
    let mut all_usable = true;
    for spec in registry::kinds()? {
        let installed = check_installed(&spec, &dir);
        // The key is looked up, never shown: the client's stored one when a client is
        // named, else ecca's.
        let stored = |provider: &str| match &client {
            Some(id) => crate::credentials::key_for(&setup.data_dir, id, provider),
            None => Ok(None),
        };
        let client_id = client.as_deref().unwrap_or("CLIENT");
        let key =
            crate::engine::driver::setup_for(&spec.name, client_id, &setup.config, &env, &stored)
                .err();
        let usable = installed.usable && key.is_none();
        all_usable &= usable;
        rows.push((spec, installed, key, usable));
    }
    if json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(spec, installed, key, usable)| {
                json!({
                    "kind": spec.name,
                    "display": spec.display,
                    "pinned": spec.version,
                    "found": installed.found,
                    "installed": installed.usable,
                    "usable": usable,
                    "detail": key.clone().unwrap_or_else(|| installed.detail.clone()),
                })
            })
            .collect();
        println!("{}", json!({"agents_dir": dir, "agents": doc}));
    } else {
        println!("agents directory: {}", dir.display());
        for (spec, installed, key, usable) in &rows {
            let detail = match (installed.usable, key) {
                (false, _) => installed.detail.clone(),
                (true, Some(why)) => format!("installed, but {why}"),
                (true, None) => installed.detail.clone(),
            };
            println!(
                "  {:<12} {:<11} {detail}",
                spec.name,
                if *usable { "usable" } else { "not usable" }
            );
        }
    }
    if all_usable {
        Ok(())
    } else {
        Err("not every agent is usable; each line above says what it needs (scripts/install_agents.sh installs the programs, a key comes from `ecca credentials add` or the provider's variable)".into())
    }
}
