//! A client's git remote for tests: a bare repository served over smart HTTP by
//! `git http-backend` (run as CGI, one process per request), behind HTTP Basic auth whose
//! password is the client's token, the way GitHub takes a token from git.
//!
//! The server runs on a thread of its own with its own runtime, so a test may block its
//! thread on a `git` or `ecca` child (which talks to this server) without stalling it.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The path the repository is served under: `URL = http://127.0.0.1:PORT/acme/site.git`.
pub const SERVED_PATH: &str = "/acme/site.git";

/// The `owner/repo` of the served repository, for `[clients.ID] repo_slug` (the URL is not
/// github.com's, so ecca cannot read the slug from it).
pub const SERVED_SLUG: &str = "acme/site";

/// One request the remote received. The Authorization header's value is never kept.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// The path after the host, e.g. `/acme/site.git/info/refs`.
    pub path: String,
    pub query: String,
    /// Whether the request carried Basic auth with the right token (always true when the
    /// remote is public).
    pub auth_ok: bool,
    /// The status sent back (the CGI's own for requests that reached git).
    pub status: u16,
    /// The request's Content-Length; `None` for a chunked body (git's large pushes).
    pub content_length: Option<u64>,
    /// The request's Content-Encoding (`gzip` for git's compressed fetch requests).
    pub content_encoding: Option<String>,
}

pub struct GitRemote {
    /// `http://127.0.0.1:PORT/acme/site.git`
    pub url: String,
    pub bare: PathBuf,
    /// The token a client must send as the Basic auth password; empty for a public remote.
    pub token: String,
    pub requests: Arc<Mutex<Vec<SeenRequest>>>,
    /// Dropping it stops the server.
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct RemoteState {
    /// The directory holding the bare repository (`GIT_PROJECT_ROOT`).
    project_root: PathBuf,
    /// The bare repository's directory name under `project_root`.
    repo_dir: String,
    token: Option<String>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl GitRemote {
    /// Serves `bare_repo` at `http://127.0.0.1:PORT/acme/site.git`; every request must carry
    /// Basic auth whose password is `token` (any user name): none → 401, a wrong one → 403.
    pub async fn start(bare_repo: &Path, token: &str) -> GitRemote {
        Self::serve(bare_repo, Some(token.to_string())).await
    }

    /// Serves `bare_repo` with no auth at all (fetch and push), as for a tokenless client.
    pub async fn start_public(bare_repo: &Path) -> GitRemote {
        Self::serve(bare_repo, None).await
    }

    async fn serve(bare_repo: &Path, token: Option<String>) -> GitRemote {
        let bare = bare_repo.canonicalize().unwrap_or_else(|e| {
            panic!(
                "the bare repository {} is missing: {e}",
                bare_repo.display()
            )
        });
        let project_root = bare
            .parent()
            .expect("a bare repository has a parent directory")
            .to_path_buf();
        let repo_dir = bare
            .file_name()
            .expect("a bare repository has a name")
            .to_string_lossy()
            .into_owned();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = RemoteState {
            project_root,
            repo_dir,
            token: token.clone(),
            requests: requests.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let (addr, stop) = serve_on_own_thread(app).await;
        GitRemote {
            url: format!("http://{addr}{SERVED_PATH}"),
            bare,
            token: token.unwrap_or_default(),
            requests,
            _stop: stop,
        }
    }

    /// `git log --format=%H %s` of `branch` in the served repository; `None` when the branch
    /// does not exist.
    pub fn branch_log(&self, branch: &str) -> Option<String> {
        let out = bare_git(&self.bare)
            .args([
                "log",
                "--format=%H %s",
                &format!("refs/heads/{branch}"),
                "--",
            ])
            .output()
            .expect("git runs");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The text of `path` at `rev` (a branch or commit) in the served repository; `None`
    /// when either does not exist.
    pub fn show(&self, rev: &str, path: &str) -> Option<String> {
        let out = bare_git(&self.bare)
            .arg("show")
            .arg(format!("{rev}:{path}"))
            .output()
            .expect("git runs");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Commits `content` as `path` on `branch` of the served repository, as someone else's
    /// push would (the branch moves on under a clone); returns the new commit's id.
    pub fn commit_upstream(
        &self,
        branch: &str,
        path: &str,
        content: &str,
        message: &str,
    ) -> String {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let index = scratch.path().join("index");
        let file = scratch.path().join("content");
        std::fs::write(&file, content).expect("write the upstream file");
        let git = |args: &[&std::ffi::OsStr]| -> String {
            let out = bare_git(&self.bare)
                .env("GIT_INDEX_FILE", &index)
                .env("GIT_AUTHOR_NAME", "Upstream Author")
                .env("GIT_AUTHOR_EMAIL", "upstream@example.com")
                .env("GIT_COMMITTER_NAME", "Upstream Author")
                .env("GIT_COMMITTER_EMAIL", "upstream@example.com")
                .args(args)
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "git {args:?} failed in {}: {}",
                self.bare.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let os = |s: &str| std::ffi::OsString::from(s);
        let parent = git(&[
            &os("rev-parse"),
            &os(&format!("refs/heads/{branch}^{{commit}}")),
        ]);
        git(&[&os("read-tree"), &os(&parent)]);
        let blob = git(&[&os("hash-object"), &os("-w"), file.as_os_str()]);
        git(&[
            &os("update-index"),
            &os("--add"),
            &os("--cacheinfo"),
            &os(&format!("100644,{blob},{path}")),
        ]);
        let tree = git(&[&os("write-tree")]);
        let commit = git(&[
            &os("commit-tree"),
            &os(&tree),
            &os("-p"),
            &os(&parent),
            &os("-m"),
            &os(message),
        ]);
        git(&[
            &os("update-ref"),
            &os(&format!("refs/heads/{branch}")),
            &os(&commit),
            &os(&parent),
        ]);
        commit
    }

    /// The branch names of the served repository, sorted.
    pub fn branches(&self) -> Vec<String> {
        let out = bare_git(&self.bare)
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git for-each-ref failed in {}: {}",
            self.bare.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// A snapshot of the requests seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// The environment that makes a `git` child send `token` the way client-github does: an
/// `http.extraHeader` with Basic auth, given through `GIT_CONFIG_*` so it never shows in
/// the arguments.
pub fn git_token_env(token: &str) -> Vec<(&'static str, String)> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    vec![
        ("GIT_TERMINAL_PROMPT", "0".to_string()),
        ("GIT_CONFIG_COUNT", "1".to_string()),
        ("GIT_CONFIG_KEY_0", "http.extraHeader".to_string()),
        (
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        ),
    ]
}

/// `git --git-dir BARE` with no user or system config read.
pub fn bare_git(bare: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("--git-dir")
        .arg(bare)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    cmd
}

/// Whether the bare repository has branch `branch`.
pub fn has_branch(bare: &Path, branch: &str) -> bool {
    bare_git(bare)
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `app` on 127.0.0.1:0 on a thread with its own runtime; returns the address and a
/// sender whose drop stops the server.
pub async fn serve_on_own_thread(app: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for a test server");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("a bound address");
            let _ = addr_tx.send(addr);
            tokio::select! {
                served = axum::serve(listener, app) => {
                    served.expect("the test server runs");
                }
                _ = stop_rx => {}
            }
        });
    });
    let addr = addr_rx
        .await
        .expect("the test server thread reports its address");
    (addr, stop_tx)
}

enum Auth {
    Missing,
    Wrong,
    Ok(String),
}

fn check_auth(headers: &HeaderMap, token: &str) -> Auth {
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Auth::Missing;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Auth::Wrong;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Auth::Wrong;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Auth::Wrong;
    };
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    // Empty credentials are what git sends when it has none to give: a challenge again.
    if decoded.trim_matches(':').is_empty() {
        return Auth::Missing;
    }
    match decoded.split_once(':') {
        Some((user, password)) if password == token && !token.is_empty() => {
            Auth::Ok(if user.is_empty() {
                "git".into()
            } else {
                user.into()
            })
        }
        _ => Auth::Wrong,
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "text/plain");
    if status == StatusCode::UNAUTHORIZED {
        builder = builder.header("www-authenticate", "Basic realm=\"git\"");
    }
    builder
        .body(Body::from(text.to_string()))
        .expect("a plain response")
}

async fn handle(State(state): State<RemoteState>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let content_length = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let content_encoding = request
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let record = |auth_ok: bool, status: u16| {
        state.requests.lock().unwrap().push(SeenRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            auth_ok,
            status,
            content_length,
            content_encoding: content_encoding.clone(),
        });
    };
    let user = match &state.token {
        None => "anonymous".to_string(),
        Some(token) => match check_auth(request.headers(), token) {
            Auth::Ok(user) => user,
            Auth::Missing => {
                record(false, 401);
                return plain(StatusCode::UNAUTHORIZED, "Authentication required\n");
            }
            Auth::Wrong => {
                record(false, 403);
                return plain(StatusCode::FORBIDDEN, "Permission denied: wrong token\n");
            }
        },
    };
    let Some(rest) = path.strip_prefix(SERVED_PATH) else {
        record(true, 404);
        return plain(StatusCode::NOT_FOUND, "Repository not found\n");
    };
    let path_info = format!("/{}{rest}", state.repo_dir);
    let response = run_backend(&state, request, &path_info, &query, &user).await;
    record(true, response.status().as_u16());
    response
}

/// Runs `git http-backend` for one request: the request body goes to its stdin while its
/// stdout is read, so neither side waits on the other; the CGI header block becomes the
/// response head and the rest is streamed back.
async fn run_backend(
    state: &RemoteState,
    request: Request,
    path_info: &str,
    query: &str,
    user: &str,
) -> Response {
    let headers = request.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", &state.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("PATH_INFO", path_info)
        .env("REQUEST_METHOD", request.method().as_str())
        .env("QUERY_STRING", query)
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (var, name) in [
        ("CONTENT_TYPE", "content-type"),
        ("CONTENT_LENGTH", "content-length"),
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ("HTTP_GIT_PROTOCOL", "git-protocol"),
    ] {
        if let Some(value) = header(name) {
            cmd.env(var, value);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not run git http-backend: {e}"),
            );
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut body = request.into_body().into_data_stream();
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Dropping stdin closes it: http-backend reads to end of input when no length is given.
    });
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    // Read until the blank line that ends the CGI headers.
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = find_header_end(&head) {
            break Some(end);
        }
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let Some((head_len, sep_len)) = header_end else {
        let _ = child.wait().await;
        let said = stderr_text.await.unwrap_or_default();
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("git http-backend gave no CGI headers: {said}"),
        );
    };
    let rest = head.split_off(head_len + sep_len);
    head.truncate(head_len);
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(&head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    let rest_stream = futures::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(rest))]);
    let tail = tokio_util::io::ReaderStream::new(stdout);
    // The child is reaped once its output is done; its stderr is dropped (kept only for the
    // header-less failure above).
    let reap = futures::stream::once(async move {
        let _ = child.wait().await;
        let _ = stderr_text.await;
        Ok::<Bytes, std::io::Error>(Bytes::new())
    });
    let stream = rest_stream.chain(tail).chain(reap);
    builder
        .status(status)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| {
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("git http-backend sent a header axum refuses: {e}"),
            )
        })
}

/// The length of the header block and of the blank line after it (`\r\n\r\n` or `\n\n`).
fn find_header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}
