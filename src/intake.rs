//! Work that arrives from outside: `POST /webhooks/upwork` creates a client's task and
//! starts it.
//!
//! A delivery is trusted only when it is signed: `X-Ecca-Signature: sha256=<hex>` is the
//! HMAC-SHA256, keyed with a secret from ecca's encrypted store, of `<timestamp>.<raw body>`
//! where `<timestamp>` is the `X-Ecca-Timestamp` header (Unix seconds). Signing the
//! timestamp with the body means an old delivery cannot be made fresh by changing a header.
//! The signature is compared in constant time, the timestamp must be within
//! `webhook.max_age_secs` (5 minutes by default), the body at most 1 MiB, and the job id is
//! the idempotency key: a job creates one task however often it is delivered. Every refusal
//! is a 4xx with `{"error": "..."}` and writes nothing.

use crate::supervisor::{NewTask, Reply, Supervisor};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use std::sync::Arc;

/// The largest body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
pub const SIGNATURE_HEADER: &str = "x-ecca-signature";
pub const TIMESTAMP_HEADER: &str = "x-ecca-timestamp";
/// When there is no history of delivered tasks of the stack.
const DEFAULT_ETA_HOURS: f64 = 2.0;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A job as Upwork-side automation posts it.
#[derive(Debug, Deserialize)]
pub struct UpworkJob {
    pub job_id: String,
    pub client_id: String,
    pub job_title: String,
    #[serde(default)]
    pub job_description: String,
    /// What the client pays for the job, in US dollars: the task's price, for its margin.
    #[serde(default)]
    pub budget_usd: Option<f64>,
}

/// Seconds since the Unix epoch, injectable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct Intake {
    sup: Supervisor,
    secret: Arc<[u8]>,
    max_age_secs: i64,
    clock: Clock,
    /// One delivery at a time between the duplicate check and the task's insert, so the
    /// same job sent twice at once gets one task and one clear refusal.
    admit: Arc<tokio::sync::Mutex<()>>,
}

impl Intake {
    pub fn new(sup: Supervisor, secret: &[u8], max_age_secs: i64, clock: Clock) -> Intake {
        Intake {
            sup,
            secret: Arc::from(secret),
            max_age_secs,
            clock,
            admit: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/webhooks/upwork", post(receive))
            .with_state(self)
    }
}

/// The signature header's value for a body sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// A refusal: its status and the sentence that says what to do.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, axum::Json(body)).into_response()
    }
}

fn refuse(status: StatusCode, text: impl Into<String>) -> Refusal {
    Refusal(status, text.into())
}

async fn receive(State(intake): State<Intake>, headers: HeaderMap, body: Body) -> Response {
    match admit(&intake, &headers, body).await {
        Ok(reply) => (StatusCode::CREATED, axum::Json(reply)).into_response(),
        Err(refusal) => {
            tracing::info!(status = %refusal.0, reason = %refusal.1, "webhook delivery refused");
            refusal.into_response()
        }
    }
}

async fn admit(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, Refusal> {
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY} bytes, or was cut off; send the job alone"),
        )
    })?;
    let timestamp = header(headers, TIMESTAMP_HEADER)?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("{TIMESTAMP_HEADER} must be Unix seconds, such as 1767225600"),
        )
    })?;
    verify(
        &intake.secret,
        timestamp,
        &body,
        header(headers, SIGNATURE_HEADER)?,
    )?;
    let age = (intake.clock)() - timestamp;
    if age.abs() > intake.max_age_secs {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            format!(
                "the delivery was signed {age} s from now, outside the {} s allowed; replays are refused, sign it afresh",
                intake.max_age_secs
            ),
        ));
    }
    let job: UpworkJob = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("the body is not a job: {e}; expected job_id, client_id, job_title and job_description"),
        )
    })?;
    let task = new_task(intake, &job)?;
    let _one_at_a_time = intake.admit.lock().await;
    let store = intake.sup.store();
    let unavailable = |e: crate::store::StoreError| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "ecca's store could not be read: {}; deliver again later",
                e.0
            ),
        )
    };
    if let Some(task_id) = store
        .intake_task("upwork", &job.job_id)
        .map_err(unavailable)?
    {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "job {} was already received as task {task_id}; nothing was created",
                job.job_id
            ),
        ));
    }
    let stack = task.stack.clone();
    let reply = intake
        .sup
        .start_intake_task(task, &job.job_id)
        .await
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, e.0))?;
    let Reply::TaskStarted { task_id, run_id } = reply else {
        return Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the task was not started",
        ));
    };
    let eta_hours = store
        .median_delivery_ms(&stack)
        .ok()
        .flatten()
        .map(|ms| (ms as f64 / 3_600_000.0 * 10.0).ceil() / 10.0)
        .unwrap_or(DEFAULT_ETA_HOURS);
    tracing::info!(%task_id, job = %job.job_id, "webhook job started");
    Ok(serde_json::json!({ "task_id": task_id, "run_id": run_id, "eta_hours": eta_hours }))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Refusal> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            refuse(
                StatusCode::UNAUTHORIZED,
                format!("the {name} header is missing"),
            )
        })
}

/// Checks `sha256=<hex>` against the body in constant time.
fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> Result<(), Refusal> {
    let bad = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "the signature does not match the body; sign `<timestamp>.<body>` with HMAC-SHA256 and the shared secret",
        )
    };
    let hex = signature.trim().strip_prefix("sha256=").ok_or_else(bad)?;
    let given = decode_hex(hex).ok_or_else(bad)?;
    let mut mac = keyed(secret);
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| bad())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// The task a job asks for, checked before anything is written.
fn new_task(intake: &Intake, job: &UpworkJob) -> Result<NewTask, Refusal> {
    let unprocessable = |text: String| refuse(StatusCode::UNPROCESSABLE_ENTITY, text);
    if job.job_id.trim().is_empty() || job.job_id.len() > 128 {
        return Err(unprocessable(
            "job_id must be 1 to 128 characters: it is the delivery's idempotency key".into(),
        ));
    }
    let store = intake.sup.store();
    match store.client(&job.client_id) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(unprocessable(format!(
                "client {:?} is not known to ecca; add it with `ecca clients add` first",
                job.client_id
            )));
        }
        Err(e) => {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "ecca's store could not be read: {}; deliver again later",
                    e.0
                ),
            ));
        }
    }
    let price_micros = match job.budget_usd {
        None => None,
        Some(usd) => Some(crate::money::usd_to_micros(usd).map_err(unprocessable)?),
    };
    let task = NewTask {
        client_id: job.client_id.clone(),
        title: job.job_title.clone(),
        description: job.job_description.clone(),
        stack: detect_stack(&format!("{} {}", job.job_title, job.job_description)).into(),
        source: "upwork".into(),
        agent_kind: "builtin".into(),
        budget_micros: Some(
            intake
                .sup
                .config()
                .client_task_budget_micros(&job.client_id),
        ),
        provider: None,
        base_branch: None,
        acceptance: vec![],
        price_micros,
    };
    intake
        .sup
        .validate_task(&task)
        .map_err(|e| unprocessable(e.0))?;
    Ok(task)
}

/// The stack a job's text asks for, by the words it uses; Python when it names none.
pub fn detect_stack(text: &str) -> &'static str {
    let text = text.to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-' || c == '+'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if has("expo") || text.contains("react native") || has("react-native") {
        "react-native"
    } else if has("typescript") || has("ts") || has("next.js") || has("nextjs") || has("deno") {
        "typescript"
    } else if has("javascript") || has("node") || has("node.js") || has("nodejs") || has("js") {
        "javascript"
    } else if has("bash") || has("shell") || text.contains("shell script") {
        "bash"
    } else {
        "python"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_comes_from_the_words_of_the_job() {
        assert_eq!(
            detect_stack("Build an Expo app for habit tracking"),
            "react-native"
        );
        assert_eq!(detect_stack("React Native screens"), "react-native");
        assert_eq!(
            detect_stack("A Next.js dashboard in TypeScript"),
            "typescript"
        );
        assert_eq!(detect_stack("Node.js scraper"), "javascript");
        assert_eq!(detect_stack("bash backup script"), "bash");
        assert_eq!(detect_stack("CSV invoice importer with pandas"), "python");
        // Words, not substrings: "its" is not TypeScript, "nodes" is not Node.
        assert_eq!(detect_stack("graph nodes and its edges"), "python");
    }

    #[test]
    fn a_signature_verifies_only_for_its_body_time_and_secret() {
        let sig = sign(b"s3cret", 1_767_225_600, b"{\"a\":1}");
        assert!(verify(b"s3cret", 1_767_225_600, b"{\"a\":1}", &sig).is_ok());
        assert!(verify(b"s3cret", 1_767_225_601, b"{\"a\":1}", &sig).is_err());
        assert!(verify(b"s3cret", 1_767_225_600, b"{\"a\":2}", &sig).is_err());
        assert!(verify(b"other", 1_767_225_600, b"{\"a\":1}", &sig).is_err());
        for garbage in [
            "",
            "sha256=",
            "sha256=zz",
            "sha1=00",
            "sha256=abc",
            "sha256=é0",
        ] {
            assert!(verify(b"s3cret", 1, b"", garbage).is_err(), "{garbage}");
        }
    }
}
