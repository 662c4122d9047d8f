//! `ecca mcp …`, `ecca images build` and the tools a supervisor gets.

use super::Setup;
use crate::config::ToolsMode;
use crate::engine::tools::{NoTools, Tools};
use crate::mcp::client::{CallError, McpClients, describe_content};
use crate::mcp::embedded::EmbeddedServers;
use crate::mcp::registry::{REGISTRY_FILE, Registry};
use crate::mcp::servers::{
    self, client_github, code_assistant, code_context, code_execution, confine::Root, linter,
    vector_code,
};
use crate::mcp::tools::McpTools;
use clap::Subcommand;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// Parsed once per process from the command line: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Run one of ecca's MCP servers (Streamable HTTP at /mcp) until stopped.
    Serve {
        /// code-context, code-assistant, code-execution, vector-code, linter or client-github.
        name: String,
        /// Address to listen on (default 127.0.0.1 and the server's port, 8100–8110).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The project directory (code-context, code-assistant; default the current one).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The sandbox image (code-execution).
        #[arg(long)]
        image: Option<String>,
        /// The directory of runs' worktrees that run_in_repo may run checks on
        /// (code-execution; default the data dir's worktrees). The Docker engine must see it
        /// at the same path.
        #[arg(long)]
        worktrees: Option<PathBuf>,
        /// The client this instance serves (client-github).
        #[arg(long)]
        client: Option<String>,
        /// The repository URL, instead of the one stored with the client (client-github).
        #[arg(long)]
        repo: Option<String>,
        /// OWNER/REPO for pull requests when the URL does not say (client-github).
        #[arg(long)]
        repo_slug: Option<String>,
        /// GitHub's REST API base (client-github).
        #[arg(long, default_value = "https://api.github.com")]
        github_api: String,
        /// An OpenAI-compatible endpoint for embeddings, e.g. http://localhost:11434/v1 (vector-code).
        #[arg(long)]
        embeddings_url: Option<String>,
        #[arg(long, default_value = "text-embedding-3-small")]
        embeddings_model: String,
        /// A browser origin allowed to call besides loopback ones (repeatable), e.g.
        /// https://console.example.com; requests from any other page are refused.
        #[arg(long = "allow-origin")]
        allow_origins: Vec<String>,
    },
    /// List a server's tools (by registry name or URL).
    Tools {
        target: String,
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the server (default: the config's tools.call_timeout_secs).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Call one tool and print its result, every kind of content included.
    Call {
        target: String,
        tool: String,
        /// Arguments as a JSON object; @FILE reads them from a file, - from stdin.
        #[arg(long, default_value = "{}", allow_hyphen_values = true)]
        args: String,
        /// Seconds the call may take, connecting included (default: the config's
        /// tools.call_timeout_secs).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Connect to every registered server at once and show its health; exits non-zero
    /// when any is down.
    Status {
        /// Seconds each server has to answer.
        #[arg(long, default_value_t = 2)]
        timeout: u64,
    },
}

/// The registry: the data dir's file if present, else the default ports on this machine.
pub fn registry(setup: &Setup) -> Result<Registry, String> {
    let path = setup.data_dir.join(REGISTRY_FILE);
    if path.exists() {
        Registry::load(&path)
    } else {
        Ok(Registry::defaults())
    }
}

/// Keeps in-process servers alive as long as the supervisor that uses them.
pub struct ToolsGuard {
    pub tools: Arc<dyn Tools>,
    embedded: Option<EmbeddedServers>,
}

impl ToolsGuard {
    pub async fn stop(self) {
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}

/// The tools a supervisor should use, as the config says.
pub async fn tools(setup: &Setup) -> Result<ToolsGuard, String> {
    let timeout = Duration::from_secs(setup.config.tools.call_timeout_secs.max(1));
    let registry_file = setup.data_dir.join(REGISTRY_FILE);
    let mode = match setup.config.tools.mode {
        ToolsMode::Auto if registry_file.exists() => ToolsMode::Registry,
        ToolsMode::Auto => ToolsMode::Embedded,
        m => m,
    };
    match mode {
        ToolsMode::None => Ok(ToolsGuard {
            tools: Arc::new(NoTools),
            embedded: None,
        }),
        ToolsMode::Registry => {
            let r = Registry::load(&registry_file)?;
            let clients = McpClients::new(
                r.servers.iter().map(|(n, s)| (n.clone(), s.endpoint())),
                timeout,
            );
            Ok(ToolsGuard {
                tools: Arc::new(McpTools::new(clients)),
                embedded: None,
            })
        }
        _ => {
            let embedded = EmbeddedServers::start(&setup.data_dir).await?;
            let tools: Arc<dyn Tools> = Arc::new(McpTools::new(embedded.clients()));
            Ok(ToolsGuard {
                tools,
                embedded: Some(embedded),
            })
        }
    }
}

fn unknown_server(name: &str) -> String {
    let names: Vec<&str> = servers::SERVERS.iter().map(|(n, _)| *n).collect();
    format!(
        "there is no server named {name}; the servers are {}",
        names.join(", ")
    )
}

fn default_listen(name: &str) -> Result<SocketAddr, String> {
    let port = servers::SERVERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .ok_or_else(|| unknown_server(name))?;
    Ok(([127, 0, 0, 1], port).into())
}

pub(super) async fn run(setup: &Setup, command: McpCommand) -> Result<(), String> {
    match command {
        McpCommand::Serve {
            name,
            listen,
            root,
            image,
            worktrees,
            client,
            repo,
            repo_slug,
            github_api,
            embeddings_url,
            embeddings_model,
            allow_origins,
        } => {
            let options = servers::ServeOptions {
                allowed_origins: allow_origins,
            };
            let listen = match listen {
                Some(a) => a,
                None => default_listen(&name)?,
            };
            let root = || -> Result<Root, String> {
                let dir = root
                    .clone()
                    .map(Ok)
                    .unwrap_or_else(|| std::env::current_dir().map_err(|e| e.to_string()))?;
                Root::new(&dir)
            };
            let mut execution = None;
            let running = match name.as_str() {
                "code-context" => {
                    let s = code_context::CodeContext::new(root()?);
                    servers::serve_with(listen, options.clone(), move || s.clone()).await?
                }
                "code-assistant" => {
                    let s = code_assistant::CodeAssistant::new(root()?);
                    servers::serve_with(listen, options.clone(), move || s.clone()).await?
                }
                "code-execution" => {
                    let worktrees = worktrees.unwrap_or_else(|| setup.data_dir.join("worktrees"));
                    let s = code_execution::CodeExecution::new(image).with_worktrees(worktrees);
                    s.sweep_leftovers().await;
                    execution = Some(s.clone());
                    servers::serve_with(listen, options.clone(), move || s.clone()).await?
                }
                "linter" => {
                    servers::serve_with(listen, options.clone(), linter::Linter::new).await?
                }
                "vector-code" => {
                    let embedder = match embeddings_url {
                        Some(base_url) => vector_code::Embedder::Remote {
                            base_url,
                            model: embeddings_model,
                            api_key: std::env::var("OPENAI_API_KEY")
                                .ok()
                                .filter(|k| !k.is_empty()),
                        },
                        None => vector_code::Embedder::Local,
                    };
                    let s = vector_code::VectorCode::open(&setup.data_dir, embedder)?;
                    servers::serve_with(listen, options.clone(), move || s.clone()).await?
                }
                "client-github" => {
                    let client_id =
                        client.ok_or("client-github serves one client; pass --client ID")?;
                    let (token, stored_repo) =
                        crate::secrets::github_credentials(&setup.data_dir, &client_id)?;
                    let repo_url = repo.or(stored_repo).ok_or_else(|| {
                        format!("client {client_id} has no repository; pass --repo URL or store one with `ecca clients token {client_id} --repo URL`")
                    })?;
                    let s = client_github::ClientGithub::new(client_github::GithubConfig {
                        // The clone is the client's mirror, shared with the runs' worktrees.
                        workdir: setup.data_dir.join("repos").join(&client_id),
                        client_id,
                        token,
                        repo_url,
                        api_base: github_api,
                        repo_slug,
                    });
                    servers::serve_with(listen, options.clone(), move || s.clone()).await?
                }
                other => return Err(unknown_server(other)),
            };
            super::output::say(&format!("{name} listening on {}", running.url));
            wait_for_stop().await;
            if let Some(s) = execution {
                s.shutdown().await;
            }
            running.stop().await;
            Ok(())
        }
        McpCommand::Tools {
            target,
            json,
            timeout,
        } => {
            let (clients, name) = single(setup, &target, timeout)?;
            let tools = clients.tools(&name).await.map_err(|e| e.to_string())?;
            if json {
                super::output::say_json(&tools)?;
            } else {
                for t in tools {
                    super::output::say(&format!(
                        "{:<16} {}",
                        t.name,
                        t.description.as_deref().unwrap_or("")
                    ));
                }
            }
            Ok(())
        }
        McpCommand::Call {
            target,
            tool,
            args,
            timeout,
        } => {
            let args = read_args(&args)?;
            let (clients, name) = single(setup, &target, timeout)?;
            let reply = clients
                .call_tool(&name, &tool, args)
                .await
                .map_err(|e| e.to_string())?;
            print_reply(&reply)
        }
        McpCommand::Status { timeout } => status(setup, Duration::from_secs(timeout.max(1))).await,
    }
}

/// `--args`: JSON itself, `@FILE`, or `-` for stdin (arguments too large for a command line).
fn read_args(args: &str) -> Result<serde_json::Value, String> {
    let (text, from) = if args == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("could not read --args from stdin: {e}"))?;
        (text, "stdin".to_string())
    } else if let Some(path) = args.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("could not read --args from {path}: {e}"))?;
        (text, path.to_string())
    } else {
        (args.to_string(), "--args".to_string())
    };
    serde_json::from_str(&text).map_err(|e| {
        format!("{from} is not JSON: {e}; give an object such as '{{\"path\": \"README.md\"}}'")
    })
}

/// The result as JSON when it is JSON, its text otherwise, then a line for each piece of
/// content that is not text.
fn print_reply(reply: &rmcp::model::CallToolResult) -> Result<(), String> {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| e.to_string());
    if let Some(structured) = &reply.structured_content {
        super::output::say(&pretty(structured)?);
    } else {
        for text in reply.content.iter().filter_map(|c| c.as_text()) {
            match serde_json::from_str::<serde_json::Value>(&text.text) {
                Ok(v) => super::output::say(&pretty(&v)?),
                Err(_) => super::output::say(&text.text),
            }
        }
    }
    for line in reply.content.iter().filter_map(describe_content) {
        super::output::say(&line);
    }
    Ok(())
}

/// Every registered server probed at once, each within `timeout`.
async fn status(setup: &Setup, timeout: Duration) -> Result<(), String> {
    let r = registry(setup)?;
    let clients = McpClients::new(
        r.servers.iter().map(|(n, s)| (n.clone(), s.endpoint())),
        timeout,
    );
    let names = clients.names();
    let probes = names.iter().map(|n| clients.probe(n));
    let results = futures::future::join_all(probes).await;
    let mut down = 0;
    for (name, result) in names.iter().zip(results) {
        let url = r
            .servers
            .get(name)
            .map(|s| s.endpoint())
            .unwrap_or_default();
        match result {
            Ok(tools) => {
                super::output::say(&format!("{name:<16} {:<6} {tools:>3} tools  {url}", "up"))
            }
            Err(e) => {
                down += 1;
                let why = match e {
                    CallError::Unreachable { detail, .. } => detail,
                    other => other.to_string(),
                };
                super::output::say(&format!(
                    "{name:<16} {:<6} {:>3} tools  {url}: {why}",
                    "down", "-"
                ));
            }
        }
    }
    if down > 0 {
        return Err(format!(
            "{down} of {} MCP servers are down; start them (`ecca mcp serve NAME`) or fix \
             {REGISTRY_FILE}",
            names.len()
        ));
    }
    Ok(())
}

/// A client for one server named in the registry or given by URL, and the name to call
/// it by: its registry name, or "MCP" for a bare URL.
fn single(
    setup: &Setup,
    target: &str,
    timeout: Option<u64>,
) -> Result<(McpClients, String), String> {
    let url = registry(setup)?.resolve(target)?;
    let name = if url == target { "MCP" } else { target };
    let secs = timeout
        .unwrap_or(setup.config.tools.call_timeout_secs)
        .max(1);
    Ok((
        McpClients::new([(name.to_string(), url)], Duration::from_secs(secs)),
        name.to_string(),
    ))
}

/// Returns on Ctrl-C or SIGTERM.
pub async fn wait_for_stop() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub(super) async fn build_images(only: Option<String>, if_missing: bool) -> Result<(), String> {
    use crate::containers::images::{Which, build};
    let which = match only.as_deref() {
        None => Which::Both,
        Some("sandbox") => Which::Sandbox,
        Some("server") => Which::Server,
        Some(other) => return Err(format!("--only takes sandbox or server, not {other}")),
    };
    let engine = crate::containers::Engine::connect()
        .await
        .map_err(|e| e.0)?;
    build(&engine, which, if_missing, &|line| {
        super::output::tell(line)
    })
    .await
    .map_err(|e| e.0)?;
    Ok(())
}
