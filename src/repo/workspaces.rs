//! The production [`Workspaces`]: mirrors and worktrees through the git door, the
//! repository's checks detected in the worktree, the diff and its risk, and delivery. For a
//! client with a token, everything that reaches its remote (fetch, push, pull request) goes
//! through a client-github server started for the purpose as a child process: the token is
//! decrypted only inside that process, is never in its arguments, and never comes back.

use super::worktree::{self, mirror_dir, worktrees_dir};
use super::{AuditEntry, branch_for, worktree_name};
use crate::config::Config;
use crate::engine::workspace::{
    Audited, DeliverReport, DeliverRequest, PrepareRequest, Prepared, Workspaces,
};
use crate::mcp::client::McpClients;
use crate::repo::{DiffSummary, RiskReport};
use crate::store::Store;
use crate::supervisor::EnvLookup;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// The patch kept with a run and shown to the operator, at most.
const MAX_PATCH_BYTES: usize = 512 * 1024;

pub struct GitWorkspaces {
    data_dir: PathBuf,
    config: Config,
    store: Store,
    env: EnvLookup,
    /// The ecca binary that serves client-github (this process's own, unless told).
    ecca_bin: PathBuf,
}

impl GitWorkspaces {
    pub fn new(data_dir: PathBuf, config: Config, store: Store, env: EnvLookup) -> GitWorkspaces {
        let ecca_bin = env("ECCA_BIN")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("ecca"));
        GitWorkspaces {
            data_dir,
            config,
            store,
            env,
            ecca_bin,
        }
    }

    fn client_config(&self, client_id: &str) -> crate::config::ClientConfig {
        self.config
            .clients
            .get(client_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The client's repository URL and whether a token is stored.
    fn repository(&self, client_id: &str) -> Result<(String, bool), String> {
        self.store
            .client_repo(client_id)
            .map_err(|e| e.0)?
            .ok_or_else(|| {
                format!(
                    "client {client_id} has no repository; store one with `ecca clients token {client_id} --repo URL`"
                )
            })
    }

    /// Starts this client's client-github server as a child process and connects to it.
    async fn github(&self, client_id: &str) -> Result<GithubChild, String> {
        let api = self.config.github.api_base(self.env.as_ref());
        let mut cmd = tokio::process::Command::new(&self.ecca_bin);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(["mcp", "serve", "client-github", "--client", client_id])
            .args(["--listen", "127.0.0.1:0", "--github-api", &api]);
        if let Some(slug) = self.client_config(client_id).repo_slug {
            cmd.args(["--repo-slug", &slug]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "could not start client-github from {}: {e}; set ECCA_BIN to the ecca binary",
                self.ecca_bin.display()
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or("client-github gave no output to read its address from")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some((_, url)) = line.split_once(" listening on ") {
                    return Some(url.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            format!("client-github for {client_id} did not start; run `ecca mcp serve client-github --client {client_id}` to see why")
        })?;
        let clients = McpClients::new(
            [("client-github".to_string(), url)],
            Duration::from_secs(self.config.tools.call_timeout_secs),
        );
        Ok(GithubChild {
            clients,
            _child: child,
        })
    }
}

/// A running client-github server; dropped, it is killed.
struct GithubChild {
    clients: McpClients,
    _child: tokio::process::Child,
}

impl GithubChild {
    /// Calls one tool, recording it in the audit trail.
    async fn call(
        &self,
        tool: &str,
        args: Value,
        audit: &mut Vec<AuditEntry>,
    ) -> Result<Value, String> {
        let started = crate::time::now_ms();
        let result = self
            .clients
            .call("client-github", tool, args.clone())
            .await
            .map_err(|e| e.to_string());
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {}", e.lines().next().unwrap_or("")),
        };
        audit.push(AuditEntry::finished(
            &format!("client-github: {tool}"),
            &args.to_string(),
            &outcome,
            started,
        ));
        result
    }
}

impl GitWorkspaces {
    async fn prepare_inner(
        &self,
        request: &PrepareRequest,
        audit: &mut Vec<AuditEntry>,
    ) -> Result<Prepared, String> {
        let (url, has_token) = self.repository(&request.client_id)?;
        let mirror = mirror_dir(&self.data_dir, &request.client_id);
        if has_token {
            // Clones once, fetches every later time, with the token only inside.
            let github = self.github(&request.client_id).await?;
            github.call("clone", json!({}), audit).await?;
        } else {
            worktree::ensure_mirror(&self.data_dir, &request.client_id, &url, audit).await?;
        }
        let base_branch = match request
            .base_branch
            .clone()
            .or_else(|| self.client_config(&request.client_id).base_branch)
        {
            Some(b) => b,
            None => worktree::default_branch(&mirror, audit).await?,
        };
        let name = worktree_name(&request.task_id, request.attempt);
        let branch = branch_for(&request.task_id);
        let tree = worktree::create_worktree(
            &mirror,
            &worktrees_dir(&self.data_dir),
            &name,
            &branch,
            &base_branch,
            audit,
        )
        .await?;
        let commands = super::checks::detect_for_client(
            &tree.path,
            &request.client_id,
            &self.client_config(&request.client_id),
        );
        Ok(Prepared {
            worktree: tree.name,
            branch: tree.branch,
            base_branch,
            base_commit: tree.base_commit,
            commands,
        })
    }

    async fn deliver_inner(
        &self,
        request: &DeliverRequest,
        audit: &mut Vec<AuditEntry>,
    ) -> DeliverReport {
        let mut report = DeliverReport {
            commit: request.commit.clone(),
            pushed: request.pushed,
            url: Err(String::new()),
        };
        let path = worktrees_dir(&self.data_dir).join(&request.worktree);
        let commit = worktree::commit_all(
            &path,
            &request.base_commit,
            &request.commit_message,
            &self.config.git.author_name,
            &self.config.git.author_email,
            audit,
        )
        .await;
        match commit {
            Ok(c) => report.commit = Some(c.sha),
            Err(e) => {
                report.url = Err(format!("the commit on {} failed: {e}", request.branch));
                return report;
            }
        }
        let (url, has_token) = match self.repository(&request.client_id) {
            Ok(r) => r,
            Err(e) => {
                report.url = Err(e);
                return report;
            }
        };
        let github = if has_token {
            match self.github(&request.client_id).await {
                Ok(g) => Some(g),
                Err(e) => {
                    report.url = Err(e);
                    return report;
                }
            }
        } else {
            None
        };
        if !report.pushed {
            let pushed = match &github {
                Some(g) => g
                    .call("push", json!({"branch": request.branch}), audit)
                    .await
                    .map(|_| ()),
                None => {
                    let mirror = mirror_dir(&self.data_dir, &request.client_id);
                    worktree::push_tokenless(&mirror, &request.branch, audit).await
                }
            };
            if let Err(e) = pushed {
                report.url = Err(format!(
                    "the push of {} failed: {e}; check the repository and token (`ecca clients token {} --from-env VAR`), then approve again: the commit is kept and not made twice",
                    request.branch, request.client_id
                ));
                return report;
            }
            report.pushed = true;
        }
        report.url = match &github {
            Some(g) => g
                .call(
                    "open_pr",
                    json!({"title": request.pr_title, "body": request.pr_body, "head": request.branch, "base": request.base_branch}),
                    audit,
                )
                .await
                .and_then(|v| {
                    v["url"]
                        .as_str()
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| "GitHub answered without the pull request's URL".to_string())
                })
                .map_err(|e| {
                    format!(
                        "the branch {} was pushed but the pull request could not be opened: {e}; approve again to retry (nothing is pushed twice)",
                        request.branch
                    )
                }),
            None => Ok(format!(
                "{url} (branch {}; no pull request: the client has no GitHub token)",
                request.branch
            )),
        };
        report
    }
}

impl Workspaces for GitWorkspaces {
    fn prepare<'a>(
        &'a self,
        request: &'a PrepareRequest,
    ) -> BoxFuture<'a, Audited<Result<Prepared, String>>> {
        Box::pin(async move {
            let mut audit = Vec::new();
            let prepared = self.prepare_inner(request, &mut audit).await;
            (prepared, audit)
        })
    }

    fn inspect<'a>(
        &'a self,
        worktree_name: &'a str,
        base_commit: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(DiffSummary, RiskReport), String>>> {
        Box::pin(async move {
            let mut audit = Vec::new();
            let path = worktrees_dir(&self.data_dir).join(worktree_name);
            let diff = worktree::diff_against_base(&path, base_commit, MAX_PATCH_BYTES, &mut audit)
                .await
                .map(|diff| {
                    let risk = crate::delivery::risk::assess(&diff);
                    (diff, risk)
                });
            (diff, audit)
        })
    }

    fn deliver<'a>(&'a self, request: &'a DeliverRequest) -> BoxFuture<'a, Audited<DeliverReport>> {
        Box::pin(async move {
            let mut audit = Vec::new();
            let report = self.deliver_inner(request, &mut audit).await;
            (report, audit)
        })
    }

    fn remove<'a>(
        &'a self,
        client_id: &'a str,
        worktree_name: &'a str,
        _branch: &'a str,
    ) -> BoxFuture<'a, Audited<Result<(), String>>> {
        Box::pin(async move {
            let mut audit = Vec::new();
            let mirror = mirror_dir(&self.data_dir, client_id);
            let path = worktrees_dir(&self.data_dir).join(worktree_name);
            let removed = worktree::remove_worktree(&mirror, &path, true, &mut audit).await;
            (removed, audit)
        })
    }

    fn sweep<'a>(
        &'a self,
        keep: &'a std::collections::HashSet<String>,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut audit = Vec::new();
            worktree::sweep_worktrees(&self.data_dir, keep, &mut audit).await
        })
    }
}
