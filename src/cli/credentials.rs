//! `ecca credentials`: model API keys per client and provider for the third-party coding
//! agents, read from an environment variable (never the command line), stored encrypted,
//! listed masked.

use super::{Setup, output};
use crate::credentials;

#[derive(Debug, clap::Subcommand)]
pub enum CredentialsCommand {
    /// Store a client's key for a provider (replacing one stored before).
    Add {
        #[arg(long)]
        client: String,
        /// anthropic (Claude Code) or openai (Codex CLI, Aider).
        #[arg(long)]
        provider: String,
        /// The environment variable that holds the key.
        #[arg(long, value_name = "VAR")]
        from_env: String,
    },
    /// The stored keys, masked to their last four characters.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Forget a client's key for a provider.
    Rm {
        #[arg(long)]
        client: String,
        #[arg(long)]
        provider: String,
    },
}

pub fn run(setup: &Setup, command: CredentialsCommand) -> Result<(), String> {
    match command {
        CredentialsCommand::Add {
            client,
            provider,
            from_env,
        } => {
            let key = std::env::var(&from_env)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| {
                    format!(
                        "the environment variable {from_env} is not set; export the key in it first"
                    )
                })?;
            credentials::add(&setup.data_dir, &client, &provider, &key)?;
            output::say(&format!(
                "stored the {provider} key of {client} encrypted ({}); only {client}'s agents get it, in their environment",
                crate::secrets::mask(key.trim())
            ));
            Ok(())
        }
        CredentialsCommand::List { json } => {
            let keys = credentials::list(&setup.data_dir)?;
            if json {
                output::say_json(&serde_json::json!({ "credentials": keys }))?;
            } else if keys.is_empty() {
                output::say(
                    "no keys stored; `ecca credentials add --client ID --provider anthropic|openai --from-env VAR` stores one",
                );
            } else {
                for k in keys {
                    output::say(&format!(
                        "{:<12} {:<10} {}",
                        k.client_id, k.provider, k.masked
                    ));
                }
            }
            Ok(())
        }
        CredentialsCommand::Rm { client, provider } => {
            credentials::remove(&setup.data_dir, &client, &provider)?;
            output::say(&format!("removed the {provider} key of {client}"));
            Ok(())
        }
    }
}
