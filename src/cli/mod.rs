//! The headless command line. Each command validates its input against the store before
//! anything is written, so a mistake costs nothing and changes nothing.

pub mod agents;
pub mod batch;
mod compare;
pub mod console;
pub mod containers;
pub mod credentials;
mod handle;
mod lists;
pub mod mcp;
mod money;
pub mod output;
mod review;
mod run;
mod serve;

use crate::config::{Config, resolve_data_dir};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ecca",
    version,
    about = "A terminal supervisor console for AI coding agents"
)]
pub struct Cli {
    /// Where ecca keeps its store, logs and deliveries (default: $ECCA_HOME, else the platform data dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The config file (default: config.toml in the data dir).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// With no command: open the console with a sample client and tasks already working.
    #[arg(long)]
    pub demo: bool,
    /// With no command: run the supervisor inside the console, as before `ecca serve`
    /// existed (closing the console interrupts its runs). Without it the console attaches
    /// to `ecca serve`, starting one in the background when none runs.
    #[arg(long)]
    pub in_process: bool,
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run one task headless, up to the approval gate (or to delivery with --auto-approve).
    Run(run::RunArgs),
    /// Approve a deliverable that awaits approval, and deliver it.
    Approve {
        task_id: String,
        /// Confirms the whole diff was read: needed when the risk score is above 70.
        #[arg(long)]
        critical_reviewed: bool,
        /// Approves a diff in which a secret was found; the note says why that is safe.
        #[arg(long, value_name = "NOTE", allow_hyphen_values = true)]
        override_secret: Option<String>,
    },
    /// Send a deliverable back to coding with a note, and wait until it is back for approval.
    Revise {
        task_id: String,
        #[arg(long, allow_hyphen_values = true)]
        note: String,
    },
    /// Reject a deliverable; the note says why.
    Reject {
        task_id: String,
        #[arg(long, allow_hyphen_values = true)]
        note: String,
    },
    /// Continue an interrupted or paused task from its last checkpoint.
    Resume { task_id: String },
    /// Start a fresh attempt of a failed, rejected or cancelled task.
    Retry { task_id: String },
    /// Cancel a task that has not ended.
    Cancel { task_id: String },
    /// List tasks, newest first.
    Tasks {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// The audit trail of a task: every tool call, file write, command, git operation and
    /// budget change. With --client: every change of the client's cap and tasks' budgets.
    Audit {
        #[arg(long, value_name = "TASK_ID", required_unless_present = "client")]
        task: Option<String>,
        #[arg(long, value_name = "CLIENT_ID", conflicts_with = "task")]
        client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a task's budget (e.g. 3.50); the note says why and is kept with the change.
    Budget {
        task_id: String,
        amount: String,
        #[arg(long, allow_hyphen_values = true)]
        note: String,
    },
    /// A client's month for invoicing: deliverables, attempts, model calls, decisions,
    /// revenue and margin, with totals equal to the ledger.
    Report {
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// YYYY-MM (UTC); the current month when absent.
        #[arg(long)]
        month: Option<String>,
        /// md, csv or json.
        #[arg(long, default_value = "md")]
        format: String,
    },
    /// The change the latest run of a task made, against its base commit.
    Diff {
        task_id: String,
        /// Files with their added and removed lines instead of the patch.
        #[arg(long)]
        stat: bool,
    },
    /// Batches of apps from a manifest: plan, run, status, retry, cancel, list.
    Batch {
        #[command(subcommand)]
        command: batch::BatchCommand,
    },
    /// Manage clients and their monthly budgets.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// MCP tool servers: serve one, list or call a server's tools, check their health.
    Mcp {
        #[command(subcommand)]
        command: mcp::McpCommand,
    },
    /// Draw a console view to an SVG file (sample data unless --store).
    Screenshot {
        /// runs, detail, approvals, approvals-compare, approvals-repo, detail-repo, new-task,
        /// clients, batch, containers and more (an unknown name lists them all).
        view: String,
        #[arg(long, value_name = "FILE.svg")]
        out: PathBuf,
        #[arg(long, default_value = "120x40", value_name = "COLSxROWS")]
        size: String,
        /// Draw the current store instead of the sample data.
        #[arg(long)]
        store: bool,
    },
    /// The containers ecca manages: list, logs, start, stop, restart, rm, stats.
    Containers {
        #[command(subcommand)]
        command: containers::ContainersCommand,
    },
    /// Run the supervisor as a long-lived process: runs, the Upwork webhook, the daily loop,
    /// and commands from other terminals on ecca.sock; SIGTERM, Ctrl-C or --stop checkpoints
    /// its runs and stops it.
    Serve {
        /// The webhook's address (default: [webhook] listen, 127.0.0.1:8787).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Stop the running `ecca serve` of this data dir.
        #[arg(long, conflicts_with = "listen")]
        stop: bool,
    },
    /// Container images, built with no registry.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// The third-party coding agents (Claude Code, Codex CLI, Aider) ecca can run.
    Agents {
        #[command(subcommand)]
        command: agents::AgentsCommand,
    },
    /// Model API keys per client and provider for those agents (stored encrypted).
    Credentials {
        #[command(subcommand)]
        command: credentials::CredentialsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Assemble the sandbox and server images from this machine's Debian files and import them.
    Build {
        /// Only `sandbox` or only `server`.
        #[arg(long)]
        only: Option<String>,
        /// Skip images that are already present.
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Add a client, or change its name and budget.
    Add {
        id: String,
        #[arg(long)]
        name: String,
        /// Monthly budget in US dollars.
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        budget_usd: f64,
    },
    /// Set a client's monthly cap (e.g. 250 or $250.00); runs the old cap paused resume.
    Cap {
        id: String,
        amount: String,
        #[arg(long, allow_hyphen_values = true)]
        note: String,
    },
    /// Set a client's monthly retainer (its revenue), or `none`.
    Retainer { id: String, amount: String },
    /// List clients with their month-to-date spend.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Store a client's repository and GitHub token (encrypted, read from an environment
    /// variable). `--repo` alone is enough for a public or local repository.
    Token {
        id: String,
        /// The environment variable that holds the token (it never goes on the command line).
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
        /// The client's repository URL (https, or a local path).
        #[arg(long)]
        repo: Option<String>,
    },
}

/// What a command needs to start: the data dir and the configuration.
pub struct Setup {
    pub data_dir: PathBuf,
    pub config: Config,
    /// Where `config` was read from (it may not exist: then the defaults).
    pub config_path: PathBuf,
}

impl Setup {
    pub fn resolve(cli: &Cli) -> Result<Setup, String> {
        let data_dir = resolve_data_dir(cli.data_dir.clone()).map_err(|e| e.0)?;
        let path = cli
            .config
            .clone()
            .or_else(|| std::env::var_os("ECCA_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| data_dir.join("config.toml"));
        if cli.config.is_some() && !path.exists() {
            return Err(format!(
                "the config file {} does not exist; check the path given to --config",
                path.display()
            ));
        }
        let config = Config::load(&path).map_err(|e| e.0)?;
        Ok(Setup {
            data_dir,
            config,
            config_path: path,
        })
    }
}

/// The client `id` from the store, or the sentence saying it does not exist and where the
/// clients are listed.
pub(crate) fn existing_client(
    store: &crate::store::Store,
    id: &str,
) -> Result<crate::store::ClientRecord, String> {
    store
        .client(id)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("client {id} does not exist; `ecca clients list` lists the clients"))
}

/// Runs a parsed command line; the error is the sentence to print.
pub async fn main(cli: Cli) -> Result<(), String> {
    let setup = Setup::resolve(&cli)?;
    match cli.command {
        None => console::run(&setup, cli.demo, cli.in_process).await,
        Some(CliCommand::Run(args)) => run::run(&setup, args).await,
        Some(CliCommand::Serve { listen, stop }) => serve::serve(&setup, listen, stop).await,
        Some(CliCommand::Approve {
            task_id,
            critical_reviewed,
            override_secret,
        }) => {
            let review = crate::supervisor::ApprovalReview {
                critical_reviewed,
                secret_override: override_secret,
            };
            run::decide(
                &setup,
                run::Decision::Approve(review),
                &task_id,
                String::new(),
            )
            .await
        }
        Some(CliCommand::Revise { task_id, note }) => {
            run::decide(&setup, run::Decision::Revise, &task_id, note).await
        }
        Some(CliCommand::Reject { task_id, note }) => {
            run::decide(&setup, run::Decision::Reject, &task_id, note).await
        }
        Some(CliCommand::Resume { task_id }) => {
            run::decide(&setup, run::Decision::Resume, &task_id, String::new()).await
        }
        Some(CliCommand::Retry { task_id }) => {
            run::decide(&setup, run::Decision::Retry, &task_id, String::new()).await
        }
        Some(CliCommand::Cancel { task_id }) => {
            run::decide(&setup, run::Decision::Cancel, &task_id, String::new()).await
        }
        Some(CliCommand::Tasks { json, limit }) => lists::tasks(&setup, json, limit),
        Some(CliCommand::Audit { task, client, json }) => match (task, client) {
            (Some(task), _) => review::audit(&setup, &task, json),
            (None, Some(client)) => money::client_budget_changes(&setup, &client, json),
            (None, None) => Err("say whose trail: --task TASK_ID or --client CLIENT_ID".into()),
        },
        Some(CliCommand::Budget {
            task_id,
            amount,
            note,
        }) => money::set_task_budget(&setup, &task_id, &amount, &note).await,
        Some(CliCommand::Report {
            client,
            month,
            format,
        }) => money::report(
            &setup,
            &client,
            &month.unwrap_or_else(crate::time::current_month),
            &format,
        ),
        Some(CliCommand::Clients {
            command: ClientsCommand::Cap { id, amount, note },
        }) => money::set_cap(&setup, &id, &amount, &note).await,
        Some(CliCommand::Clients {
            command: ClientsCommand::Retainer { id, amount },
        }) => money::set_retainer(&setup, &id, &amount).await,
        Some(CliCommand::Diff { task_id, stat }) => review::diff(&setup, &task_id, stat),
        Some(CliCommand::Clients {
            command:
                ClientsCommand::Add {
                    id,
                    name,
                    budget_usd,
                },
        }) => lists::add_client(&setup, &id, &name, budget_usd).await,
        Some(CliCommand::Clients {
            command: ClientsCommand::List { json },
        }) => lists::clients(&setup, json),
        Some(CliCommand::Clients {
            command: ClientsCommand::Token { id, from_env, repo },
        }) => lists::client_token(&setup, &id, from_env.as_deref(), repo.as_deref()),
        Some(CliCommand::Mcp { command }) => mcp::run(&setup, command).await,
        Some(CliCommand::Containers { command }) => containers::run(&setup, command).await,
        Some(CliCommand::Batch { command }) => batch::command(&setup, command).await,
        Some(CliCommand::Screenshot {
            view,
            out,
            size,
            store,
        }) => console::screenshot(&setup, &view, &out, &size, store),
        Some(CliCommand::Images {
            command: ImagesCommand::Build { only, if_missing },
        }) => mcp::build_images(only, if_missing).await,
        Some(CliCommand::Agents { command }) => agents::run(&setup, command),
        Some(CliCommand::Credentials { command }) => credentials::run(&setup, command),
    }
}
