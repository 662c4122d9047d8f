//! `client-github`: one instance per client, with that client's token. clone, commit, push
//! and open_pr. The token is decrypted only inside this process, is handed to git through
//! its environment (never its arguments), and is masked out of every result and error.

use super::confine::{self, Change, Root, WriteMode};
use super::fail;
use crate::secrets::redact;
use base64::Engine as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Everything one client's instance needs.
pub struct GithubConfig {
    pub client_id: String,
    pub token: String,
    pub repo_url: String,
    /// GitHub's REST API (`https://api.github.com`), or a stand-in.
    pub api_base: String,
    /// `owner/repo`, when it cannot be read from `repo_url`.
    pub repo_slug: Option<String>,
    /// Where the clone lives.
    pub workdir: PathBuf,
}

#[derive(Clone)]
pub struct ClientGithub {
    cfg: Arc<GithubConfig>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CloneArgs {}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cloned {
    pub path: String,
    pub branch: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FileArg {
    /// Relative path inside the repository.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CommitArgs {
    /// Branch to commit on (created from the current head when missing), e.g. agt/T-0001.
    pub branch: String,
    pub message: String,
    pub files: Vec<FileArg>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Committed {
    pub sha: String,
    pub branch: String,
    pub files: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PushArgs {
    pub branch: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pushed {
    pub branch: String,
    pub remote: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PullRequestArgs {
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// The branch with the work.
    pub head: String,
    /// The branch to merge into (default main).
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
}

/// `owner/repo` from a GitHub URL (https or ssh form).
pub fn slug_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git@github.com:"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(r), None) if !o.is_empty() && !r.is_empty() => Some(format!("{o}/{r}")),
        _ => None,
    }
}

impl ClientGithub {
    /// A server for one client; the leftovers of a server killed mid-write in the clone go
    /// first, so that no commit picks them up.
    pub fn new(cfg: GithubConfig) -> Self {
        if let Ok(root) = Root::new(&cfg.workdir.join("repo")) {
            root.remove_leftovers();
        }
        ClientGithub {
            cfg: Arc::new(cfg),
            tool_router: Self::tool_router(),
        }
    }

    fn clone_dir(&self) -> PathBuf {
        self.cfg.workdir.join("repo")
    }

    fn masked(&self, text: &str) -> String {
        redact(text, &self.cfg.token)
    }

    /// Runs git with the token in its environment (as an HTTP header for https remotes).
    async fn git(&self, args: &[&str], dir: Option<&std::path::Path>) -> Result<String, String> {
        let mut cmd = tokio::process::Command::new("git");
        if let Some(d) = dir {
            cmd.arg("-C").arg(d);
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", self.cfg.token));
        cmd.args([
            "-c",
            "user.name=ecca",
            "-c",
            "user.email=ecca@localhost",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        )
        .kill_on_drop(true);
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("could not run git: {e}; install git"))?;
        let stdout = self.masked(&String::from_utf8_lossy(&out.stdout));
        let stderr = self.masked(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            // git says why on stderr for most commands but on stdout for some (`commit`
            // with nothing to commit), so both are shown.
            let said: Vec<&str> = [stderr.trim(), stdout.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let reason = if said.is_empty() {
                format!("git exited with {} and said nothing", out.status)
            } else {
                said.join("\n")
            };
            return Err(format!(
                "git {} failed: {reason}",
                args.first().copied().unwrap_or("")
            ));
        }
        Ok(stdout)
    }
}

#[tool_router]
impl ClientGithub {
    #[tool(
        name = "clone",
        description = "Clone the client's repository (or fetch it again when already cloned).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn clone_repo(
        &self,
        Parameters(_): Parameters<CloneArgs>,
    ) -> Result<Json<Cloned>, String> {
        let dir = self.clone_dir();
        if dir.join(".git").exists() {
            self.git(&["fetch", "--prune", "origin"], Some(&dir))
                .await?;
        } else {
            std::fs::create_dir_all(&self.cfg.workdir)
                .map_err(|e| format!("could not create {}: {e}", self.cfg.workdir.display()))?;
            let target = dir.to_string_lossy().into_owned();
            self.git(&["clone", "--quiet", &self.cfg.repo_url, &target], None)
                .await?;
        }
        let branch = self
            .git(&["rev-parse", "--abbrev-ref", "HEAD"], Some(&dir))
            .await?
            .trim()
            .to_string();
        Ok(Json(Cloned {
            path: "repo".into(),
            branch,
        }))
    }

    #[tool(
        description = "Write files on a branch of the clone and commit them.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn commit(
        &self,
        Parameters(args): Parameters<CommitArgs>,
    ) -> Result<Json<Committed>, String> {
        let dir = self.clone_dir();
        if !dir.join(".git").exists() {
            return fail("the repository is not cloned yet; call clone first");
        }
        if args.files.is_empty() {
            return fail("a commit needs at least one file");
        }
        self.git(&["check-ref-format", "--branch", &args.branch], Some(&dir))
            .await
            .map_err(|_| format!("{:?} is not a valid branch name", args.branch))?;
        self.git(&["checkout", "--quiet", "-B", &args.branch], Some(&dir))
            .await?;
        // The files go through the clone's root handle like every other server's writes:
        // a link that came with the repository is refused, never written through.
        let root = Root::new(&dir)?;
        // A dead write's temporaries go first; backups stay (they may hold a file's only
        // earlier content) and, like any write's temporaries, are never staged below.
        root.remove_leftovers();
        let mut names = Vec::new();
        let mut changes = Vec::new();
        for f in &args.files {
            let parts = confine::components(f.path.trim())?;
            if parts.iter().any(|p| p.eq_ignore_ascii_case(".git")) {
                return fail(format!("{} is inside .git; refused", f.path));
            }
            changes.push(Change::Write {
                path: f.path.clone(),
                content: f.content.clone().into_bytes(),
                mode: WriteMode::CreateOrReplace,
            });
            names.push(f.path.clone());
        }
        root.write_all(&changes)?;
        self.git(
            &[
                "add",
                "--all",
                "--",
                ".",
                ":(exclude)*.ecca-tmp",
                ":(exclude)*.ecca-bak",
            ],
            Some(&dir),
        )
        .await?;
        self.git(&["commit", "--quiet", "-m", &args.message], Some(&dir))
            .await?;
        let sha = self
            .git(&["rev-parse", "HEAD"], Some(&dir))
            .await?
            .trim()
            .to_string();
        Ok(Json(Committed {
            sha,
            branch: args.branch,
            files: names,
        }))
    }

    // Not idempotent: a push sends the branch as it is when the push runs, and another
    // call may have committed to it since the first push.
    #[tool(
        description = "Push a branch of the clone to the client's repository.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn push(
        &self,
        Parameters(args): Parameters<PushArgs>,
    ) -> Result<Json<Pushed>, String> {
        let dir = self.clone_dir();
        if !dir.join(".git").exists() {
            return fail("the repository is not cloned yet; call clone first");
        }
        self.git(
            &[
                "push",
                "--quiet",
                "origin",
                &format!("refs/heads/{0}:refs/heads/{0}", args.branch),
            ],
            Some(&dir),
        )
        .await?;
        Ok(Json(Pushed {
            branch: args.branch,
            remote: self.masked(&self.cfg.repo_url),
        }))
    }

    #[tool(
        description = "Open a pull request on the client's repository.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn open_pr(
        &self,
        Parameters(args): Parameters<PullRequestArgs>,
    ) -> Result<Json<PullRequest>, String> {
        let slug = self.cfg.repo_slug.clone().or_else(|| slug_of(&self.cfg.repo_url)).ok_or_else(|| {
            format!("cannot tell the owner/repo of {}; start the server with --repo-slug OWNER/REPO", self.masked(&self.cfg.repo_url))
        })?;
        crate::install_tls_provider();
        let url = format!(
            "{}/repos/{slug}/pulls",
            self.cfg.api_base.trim_end_matches('/')
        );
        let body = serde_json::json!({"title": args.title, "body": args.body, "head": args.head, "base": args.base.unwrap_or_else(|| "main".into())});
        let resp = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&self.cfg.token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "ecca")
            .json(&body)
            .send()
            .await
            .map_err(|e| self.masked(&format!("GitHub could not be reached at {url}: {e}")))?;
        let status = resp.status();
        let reply: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = reply["message"].as_str().unwrap_or("no message");
            return fail(self.masked(&format!(
                "GitHub refused the pull request (HTTP {status}): {message}"
            )));
        }
        Ok(Json(PullRequest {
            number: reply["number"].as_u64().unwrap_or(0),
            url: reply["html_url"].as_str().unwrap_or("").to_string(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ClientGithub {
    fn get_info(&self) -> ServerConfig {
        super::server_info("client-github", None)
    }
}

#[cfg(test)]
mod tests {
    use super::slug_of;

    #[test]
    fn slugs_from_github_urls() {
        assert_eq!(
            slug_of("https://github.com/acme/site.git").as_deref(),
            Some("acme/site")
        );
        assert_eq!(
            slug_of("git@github.com:acme/site.git").as_deref(),
            Some("acme/site")
        );
        assert_eq!(slug_of("/srv/git/site.git"), None);
    }
}
