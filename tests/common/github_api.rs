//! GitHub's pull-request API for tests: `POST /repos/{owner}/{repo}/pulls`, checked and
//! answered the way GitHub does (status codes, error bodies, the success shape).
//!
//! ecca reaches it through `ECCA_GITHUB_API = base_url` (or `[github] api_base`); with a
//! `GitRemote` the client's slug comes from `[clients.ID] repo_slug = "acme/site"`.

use super::git_remote::{bare_git, serve_on_own_thread};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct GithubApi {
    /// `http://127.0.0.1:PORT` (what `ECCA_GITHUB_API` or `[github] api_base` is set to).
    pub base_url: String,
    /// The request bodies of the pull requests opened, in order.
    pub pulls: Arc<Mutex<Vec<Value>>>,
    /// Why each refused call was refused, in order.
    pub rejected: Arc<Mutex<Vec<String>>>,
    state: ApiState,
    /// Dropping it stops the server.
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ApiState {
    token: String,
    owner: String,
    repo: String,
    /// When set, `head` and `base` must be branches of this bare repository.
    bare: Arc<Mutex<Option<PathBuf>>>,
    fail_next: Arc<Mutex<Option<u16>>>,
    /// The pull requests as GitHub shows them (the 201 replies), for `GET …/pulls`.
    opened: Arc<Mutex<Vec<Value>>>,
    pulls: Arc<Mutex<Vec<Value>>>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl GithubApi {
    /// Answers for `owner/repo` only, to callers that send `token`.
    pub async fn start(token: &str, owner: &str, repo: &str) -> GithubApi {
        let pulls = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let base_url = Arc::new(Mutex::new(String::new()));
        let state = ApiState {
            token: token.to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            bare: Arc::new(Mutex::new(None)),
            fail_next: Arc::new(Mutex::new(None)),
            opened: Arc::new(Mutex::new(Vec::new())),
            pulls: pulls.clone(),
            rejected: rejected.clone(),
        };
        // The address is known only once bound; the handler reads it from here.
        let app_state = (state.clone(), base_url.clone());
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/pulls",
                post(create_pull).get(list_pulls),
            )
            .fallback(not_found)
            .with_state(app_state);
        let (addr, stop) = serve_on_own_thread(app).await;
        let url = format!("http://{addr}");
        *base_url.lock().unwrap() = url.clone();
        GithubApi {
            base_url: url,
            pulls,
            rejected,
            state,
            _stop: stop,
        }
    }

    /// From now on `head` (and `base`) must be branches of `bare`, and `head` must have
    /// commits that `base` lacks, as GitHub requires.
    pub fn with_repo(self, bare: &Path) -> Self {
        *self.state.bare.lock().unwrap() = Some(bare.to_path_buf());
        self
    }

    /// The next call is answered with `status` and GitHub's message for it, and not recorded
    /// as a pull request.
    pub fn fail_next(&self, status: u16) {
        *self.state.fail_next.lock().unwrap() = Some(status);
    }

    pub fn pull_count(&self) -> usize {
        self.pulls.lock().unwrap().len()
    }
}

type AppState = (ApiState, Arc<Mutex<String>>);

fn github_error(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn refuse(state: &ApiState, status: StatusCode, reason: String, body: Value) -> Response {
    state.rejected.lock().unwrap().push(reason);
    github_error(status, body)
}

fn validation_failed(state: &ApiState, reason: String, errors: Value) -> Response {
    refuse(
        state,
        StatusCode::UNPROCESSABLE_ENTITY,
        reason,
        json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422"
        }),
    )
}

async fn not_found(State((state, _)): State<AppState>, uri: axum::http::Uri) -> Response {
    refuse(
        &state,
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {uri}"),
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_string())
}

/// The commit `branch` points at in `bare`, if it is a branch there.
fn branch_sha(bare: &Path, branch: &str) -> Option<String> {
    let out = bare_git(bare)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/{branch}^{{commit}}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// How many commits `head` has that `base` lacks.
fn commits_ahead(bare: &Path, base: &str, head: &str) -> usize {
    let out = bare_git(bare)
        .args(["rev-list", "--count"])
        .arg(format!("refs/heads/{base}..refs/heads/{head}"))
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        _ => 0,
    }
}

/// What GitHub checks before anything else: the repository, the token, the media type.
/// The refusal to send, if any.
fn gate(state: &ApiState, owner: &str, repo: &str, headers: &HeaderMap) -> Option<Response> {
    if owner != state.owner || repo != state.repo {
        return Some(refuse(
            state,
            StatusCode::NOT_FOUND,
            format!("wrong repository {owner}/{repo}"),
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "404"}),
        ));
    }
    match token_of(headers) {
        Some(t) if t == state.token => {}
        sent => {
            let reason = if sent.is_none() {
                "no Bearer/token Authorization header"
            } else {
                "wrong token"
            };
            return Some(refuse(
                state,
                StatusCode::UNAUTHORIZED,
                reason.to_string(),
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
            ));
        }
    }
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept.contains("application/vnd.github") {
        return Some(refuse(
            state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Accept header {accept:?} is not application/vnd.github+json"),
            json!({"message": "Unsupported 'Accept' header: expected application/vnd.github+json", "status": "415"}),
        ));
    }
    None
}

async fn create_pull(
    State((state, base_url)): State<AppState>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = gate(&state, &owner, &repo, &headers) {
        return refused;
    }
    if let Some(status) = state.fail_next.lock().unwrap().take() {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match status {
            401 => "Bad credentials",
            403 => "Resource not accessible by personal access token",
            404 => "Not Found",
            422 => "Validation Failed",
            502 => "Server Error",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        return refuse(
            &state,
            code,
            format!("failed on request with {status}"),
            json!({"message": message, "status": status.to_string()}),
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "body is not JSON".to_string(),
            json!({"message": "Problems parsing JSON", "status": "400"}),
        );
    };
    let mut missing = Vec::new();
    for field in ["title", "head", "base"] {
        match request.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => missing.push(field),
        }
    }
    if !matches!(
        request.get("body"),
        None | Some(Value::Null | Value::String(_))
    ) {
        missing.push("body");
    }
    if !missing.is_empty() {
        let errors: Vec<Value> = missing
            .iter()
            .map(|f| json!({"resource": "PullRequest", "code": "missing_field", "field": f}))
            .collect();
        return validation_failed(
            &state,
            format!("missing or invalid fields: {}", missing.join(", ")),
            Value::Array(errors),
        );
    }
    let title = request["title"].as_str().unwrap_or_default().to_string();
    let head_spec = request["head"].as_str().unwrap_or_default().to_string();
    let base = request["base"].as_str().unwrap_or_default().to_string();
    // `head` may be `branch` or `owner:branch`.
    let head = match head_spec.split_once(':') {
        Some((o, branch)) if o == state.owner => branch.to_string(),
        Some(_) => {
            return validation_failed(
                &state,
                format!("head {head_spec} names another owner"),
                json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
            );
        }
        None => head_spec.clone(),
    };
    let bare = state.bare.lock().unwrap().clone();
    let head_sha = match &bare {
        Some(bare) => {
            let Some(sha) = branch_sha(bare, &head) else {
                return validation_failed(
                    &state,
                    format!("head branch {head} does not exist"),
                    json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
                );
            };
            if branch_sha(bare, &base).is_none() {
                return validation_failed(
                    &state,
                    format!("base branch {base} does not exist"),
                    json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
                );
            }
            if commits_ahead(bare, &base, &head) == 0 {
                return validation_failed(
                    &state,
                    format!("no commits between {base} and {head}"),
                    json!([{"resource": "PullRequest", "code": "custom", "message": format!("No commits between {base} and {head}")}]),
                );
            }
            sha
        }
        None => format!("{:0>40}", format!("{:x}", fnv(&head))),
    };
    let mut pulls = state.pulls.lock().unwrap();
    let already = pulls
        .iter()
        .any(|p| p["head"].as_str().map(|h| h.rsplit(':').next()) == Some(Some(head.as_str())));
    if already {
        drop(pulls);
        return validation_failed(
            &state,
            format!("a pull request for {head} is already open"),
            json!([{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {}:{head}.", state.owner)}]),
        );
    }
    let number = pulls.len() as u64 + 1;
    let base_url = base_url.lock().unwrap().clone();
    let (owner, repo) = (&state.owner, &state.repo);
    let user = json!({"login": owner, "id": 1, "type": "User"});
    let reply = json!({
        "id": 1_000_000 + number,
        "node_id": format!("PR_{number}"),
        "number": number,
        "url": format!("{base_url}/repos/{owner}/{repo}/pulls/{number}"),
        "html_url": format!("{base_url}/{owner}/{repo}/pull/{number}"),
        "state": "open",
        "draft": false,
        "title": title,
        "body": request.get("body").cloned().unwrap_or(Value::Null),
        "head": {"ref": head, "sha": head_sha, "label": format!("{owner}:{head}"), "user": user},
        "base": {"ref": base, "label": format!("{owner}:{base}"), "user": user},
        "user": user,
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    pulls.push(request.clone());
    state.opened.lock().unwrap().push(reply.clone());
    drop(pulls);
    (
        StatusCode::CREATED,
        [
            (
                "content-type",
                "application/json; charset=utf-8".to_string(),
            ),
            (
                "location",
                format!("{base_url}/repos/{owner}/{repo}/pulls/{number}"),
            ),
        ],
        reply.to_string(),
    )
        .into_response()
}

/// `GET /repos/{owner}/{repo}/pulls?head=OWNER:BRANCH&base=B&state=open|closed|all`: the
/// pull requests opened so far that match, as GitHub lists them (all of them are open).
async fn list_pulls(
    State((state, _)): State<AppState>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&state, &owner, &repo, &headers) {
        return refused;
    }
    let wanted_state = query.get("state").map(String::as_str).unwrap_or("open");
    let matching: Vec<Value> = state
        .opened
        .lock()
        .unwrap()
        .iter()
        .filter(|_| wanted_state == "open" || wanted_state == "all")
        .filter(|pr| {
            query
                .get("head")
                .is_none_or(|h| pr["head"]["label"] == h.as_str())
        })
        .filter(|pr| {
            query
                .get("base")
                .is_none_or(|b| pr["base"]["ref"] == b.as_str())
        })
        .cloned()
        .collect();
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        Value::Array(matching).to_string(),
    )
        .into_response()
}

/// A stable stand-in commit id for a branch when no repository is attached.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
