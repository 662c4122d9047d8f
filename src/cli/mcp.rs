//! `ecca mcp …`, `ecca images build` and the tools a supervisor gets.

use super::Setup;
use crate::config::ToolsMode;
use crate::engine::tools::{NoTools, Tools};
use crate::mcp::client::McpClients;
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
    },
    /// List a server's tools (by registry name or URL).
    Tools {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Call one tool and print its result.
    Call {
        target: String,
        tool: String,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}", allow_hyphen_values = true)]
        args: String,
    },
    /// Connect to every registered server and show its health.
    Status,
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
            client,
            repo,
            repo_slug,
            github_api,
            embeddings_url,
            embeddings_model,
        } => {
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
                    servers::serve(listen, move || s.clone()).await?
                }
                "code-assistant" => {
                    let s = code_assistant::CodeAssistant::new(root()?);
                    servers::serve(listen, move || s.clone()).await?
                }
                "code-execution" => {
                    let s = code_execution::CodeExecution::new(image);
                    s.sweep_leftovers().await;
                    execution = Some(s.clone());
                    servers::serve(listen, move || s.clone()).await?
                }
                "linter" => servers::serve(listen, linter::Linter::new).await?,
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
                    servers::serve(listen, move || s.clone()).await?
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
                        workdir: setup.data_dir.join("github").join(&client_id),
                        client_id,
                        token,
                        repo_url,
                        api_base: github_api,
                        repo_slug,
                    });
                    servers::serve(listen, move || s.clone()).await?
                }
                other => return Err(unknown_server(other)),
            };
            println!("{name} listening on {}", running.url);
            wait_for_stop().await;
            if let Some(s) = execution {
                s.shutdown().await;
            }
            running.stop().await;
            Ok(())
        }
        McpCommand::Tools { target, json } => {
            let clients = single(setup, &target)?;
            let tools = clients.tools("target").await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tools).map_err(|e| e.to_string())?
                );
            } else {
                for t in tools {
                    println!("{:<16} {}", t.name, t.description.as_deref().unwrap_or(""));
                }
            }
            Ok(())
        }
        McpCommand::Call { target, tool, args } => {
            let args: serde_json::Value = serde_json::from_str(&args).map_err(|e| {
                format!(
                    "--args is not JSON: {e}; give an object such as '{{\"path\": \"README.md\"}}'"
                )
            })?;
            let clients = single(setup, &target)?;
            let result = clients
                .call("target", &tool, args)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        McpCommand::Status => {
            let r = registry(setup)?;
            let clients = McpClients::new(
                r.servers.iter().map(|(n, s)| (n.clone(), s.endpoint())),
                Duration::from_secs(5),
            );
            for name in clients.names() {
                let _ = clients.tools(&name).await;
            }
            for h in clients.health().await {
                println!(
                    "{:<16} {:<12} {:>3} tools  {}",
                    h.name,
                    if h.connected { "up" } else { "down" },
                    h.tools,
                    if h.connected {
                        h.url
                    } else {
                        h.last_error.unwrap_or(h.url)
                    }
                );
            }
            Ok(())
        }
    }
}

fn single(setup: &Setup, target: &str) -> Result<McpClients, String> {
    let url = registry(setup)?.resolve(target)?;
    Ok(McpClients::new(
        [("target".to_string(), url)],
        Duration::from_secs(330),
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
    build(&engine, which, if_missing, &|line| eprintln!("{line}"))
        .await
        .map_err(|e| e.0)?;
    Ok(())
}
