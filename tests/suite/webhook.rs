//! `POST /webhooks/upwork` over real HTTP against a real supervisor and SQLite store: a
//! signed delivery creates and starts one task; every refusal is a 4xx with a JSON error
//! and writes no row; random bodies and headers never bring the listener down. And the real
//! binary: `ecca serve` receives a job and checkpoints on SIGTERM.

use crate::common;

use ecca::intake::{Intake, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use ecca::supervisor::Supervisor;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const SECRET: &[u8] = b"whsec-test-0123456789";

struct Listener {
    url: String,
    now: Arc<AtomicI64>,
    sup: Supervisor,
    db: std::path::PathBuf,
}

async fn listen(dir: &std::path::Path) -> Listener {
    ecca::install_tls_provider();
    let sup = common::supervisor_with_acme(dir, |c| c.offline.latency_ms = 50).await;
    let now = Arc::new(AtomicI64::new(1_767_225_600));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let intake = Intake::new(sup.clone(), SECRET, 300, clock);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/upwork", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, intake.router()).await });
    Listener {
        url,
        now,
        sup,
        db: dir.join("ecca.db"),
    }
}

/// Rows of every table of the store, by table.
fn rows(db: &std::path::Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

fn job(job_id: &str, client: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "job_id": job_id,
        "client_id": client,
        "job_title": "CSV invoice importer",
        "job_description": "Import invoices from CSV with pandas and print totals per customer.",
        "budget_usd": 150.0,
    }))
    .unwrap()
}

async fn post(url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the answer is JSON ({e}): {status} {text:?}"));
    (status, json)
}

/// A refusal to provoke: what it is, the body, the headers, the status expected.
type Case = (&'static str, Vec<u8>, Vec<(&'static str, String)>, u16);

fn signed(ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        (TIMESTAMP_HEADER, ts.to_string()),
        (SIGNATURE_HEADER, sign(SECRET, ts, body)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_job_creates_and_starts_one_task_and_every_refusal_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = listen(dir.path()).await;
    let now = l.now.load(Ordering::SeqCst);

    let body = job("upwork-4471", "acme");
    let (status, reply) = post(&l.url, body.clone(), &signed(now, &body)).await;
    assert_eq!(status, 201, "{reply}");
    let task_id = reply["task_id"].as_str().unwrap().to_string();
    assert!(reply["run_id"].as_str().unwrap().starts_with(&task_id));
    assert!(reply["eta_hours"].as_f64().unwrap() > 0.0);
    let task = l.sup.store().task(&task_id).unwrap().unwrap();
    assert_eq!(
        (
            task.source.as_str(),
            task.stack.as_str(),
            task.client_id.as_str()
        ),
        ("upwork", "python", "acme")
    );
    assert_eq!(task.price_micros, Some(150_000_000));
    assert_eq!(task.budget_micros, l.sup.config().task_budget_micros());
    // It was started: the run reaches the approval gate with the offline model.
    let settled = tokio::time::timeout(Duration::from_secs(120), l.sup.wait_settled(&task_id))
        .await
        .expect("the job's run settles")
        .unwrap();
    assert_eq!(settled.status, ecca::domain::TaskStatus::AwaitingApproval);

    let before = rows(&l.db);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let oversize = {
        let mut v = b"{\"job_id\":\"big\",\"client_id\":\"acme\",\"job_title\":\"x\",\"job_description\":\"".to_vec();
        v.resize(ecca::intake::MAX_BODY + 10, b'a');
        v.extend_from_slice(b"\"}");
        v
    };
    let malformed = b"{\"job_id\": \"j-9\", \"client_id\": ".to_vec();
    let wrong_shape = br#"{"job_id": 7, "client_id": "acme"}"#.to_vec();
    let unknown = job("upwork-5000", "nobody");
    let cases: Vec<Case> = vec![
        ("the same job again", body.clone(), signed(now, &body), 409),
        (
            "the same job, re-signed later",
            body.clone(),
            signed(now + 60, &body),
            409,
        ),
        (
            "a body changed after signing",
            tampered.clone(),
            signed(now, &body),
            401,
        ),
        (
            "signed with another secret",
            body.clone(),
            vec![
                (TIMESTAMP_HEADER, now.to_string()),
                (SIGNATURE_HEADER, sign(b"another", now, &body)),
            ],
            401,
        ),
        (
            "no signature",
            body.clone(),
            vec![(TIMESTAMP_HEADER, now.to_string())],
            401,
        ),
        (
            "no timestamp",
            body.clone(),
            vec![(SIGNATURE_HEADER, sign(SECRET, now, &body))],
            401,
        ),
        (
            "a stale timestamp (a replay)",
            job("upwork-old", "acme"),
            signed(now - 301, &job("upwork-old", "acme")),
            401,
        ),
        (
            "a timestamp from the future",
            job("upwork-new", "acme"),
            signed(now + 301, &job("upwork-new", "acme")),
            401,
        ),
        (
            "a timestamp that is not a number",
            body.clone(),
            vec![
                (TIMESTAMP_HEADER, "yesterday".into()),
                (SIGNATURE_HEADER, sign(SECRET, now, &body)),
            ],
            400,
        ),
        (
            "an oversize body",
            oversize.clone(),
            signed(now, &oversize),
            413,
        ),
        (
            "malformed JSON",
            malformed.clone(),
            signed(now, &malformed),
            400,
        ),
        (
            "JSON of the wrong shape",
            wrong_shape.clone(),
            signed(now, &wrong_shape),
            400,
        ),
        (
            "an unknown client",
            unknown.clone(),
            signed(now, &unknown),
            422,
        ),
    ];
    for (what, body, headers, want) in cases {
        let (status, reply) = post(&l.url, body, &headers).await;
        assert_eq!(status, want, "{what}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.len() > 20, "{what}: a sentence, not a code: {reply}");
        if want == 409 {
            assert!(error.contains(&task_id), "{what}: names the task: {error}");
        }
        assert_eq!(rows(&l.db), before, "{what} wrote nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_job_delivered_at_once_from_many_senders_creates_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let l = listen(dir.path()).await;
    let now = l.now.load(Ordering::SeqCst);
    let body = job("upwork-race", "acme");
    let sends = (0..8).map(|_| {
        let (url, body) = (l.url.clone(), body.clone());
        tokio::spawn(async move { post(&url, body.clone(), &signed(now, &body)).await.0 })
    });
    let mut statuses: Vec<u16> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let tasks = l.sup.store().tasks(10_000).unwrap();
    assert_eq!(tasks.iter().filter(|t| t.source == "upwork").count(), 1);
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_and_headers_are_refused_and_never_bring_the_listener_down() {
    let dir = tempfile::tempdir().unwrap();
    let l = listen(dir.path()).await;
    let now = l.now.load(Ordering::SeqCst);
    let before = rows(&l.db);
    let mut rng = XorShift(0x5eed_ecca_2026);
    let client = reqwest::Client::new();
    let json_bits = [
        &b"{"[..],
        b"}",
        b"\"job_id\"",
        b":",
        b"\"acme\"",
        b",",
        b"[",
        b"]",
        b"null",
        b"1e999",
        b"\"\\ud800\"",
        b"\"client_id\"",
        b"\xff",
        b"\"job_title\"",
        b"-0",
    ];
    for i in 0..400 {
        let body = match i % 3 {
            0 => rng.bytes(2048),
            1 => (0..(rng.next() % 40))
                .flat_map(|_| json_bits[(rng.next() as usize) % json_bits.len()].to_vec())
                .collect(),
            _ => {
                // A well-formed job with one byte flipped.
                let mut b = job(&format!("fuzz-{i}"), "acme");
                let at = (rng.next() as usize) % b.len();
                b[at] ^= 1 << (rng.next() % 8);
                b
            }
        };
        let mut req = client.post(&l.url).body(body.clone());
        // Signed correctly a third of the time, so parsing and validation are reached.
        match rng.next() % 3 {
            0 => {
                for (k, v) in signed(now, &body) {
                    req = req.header(k, v);
                }
            }
            1 => {
                let junk: String = rng
                    .bytes(80)
                    .iter()
                    .map(|b| (b % 94 + 33) as char)
                    .collect();
                req = req
                    .header(TIMESTAMP_HEADER, junk.clone())
                    .header(SIGNATURE_HEADER, format!("sha256={junk}"));
            }
            _ => {}
        }
        let resp = req.send().await.expect("the listener answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        // A flipped byte can still be a valid job (a changed title): that one is created.
        if status == 201 {
            continue;
        }
        assert!((400..500).contains(&status), "case {i}: {status} {text}");
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(reply["error"].is_string(), "case {i}: {text}");
    }
    // Still serving, and nothing but the accepted jobs was written.
    let body = job("after-fuzz", "acme");
    let (status, reply) = post(&l.url, body.clone(), &signed(now, &body)).await;
    assert_eq!(status, 201, "{reply}");
    let jobs = |rows: &[(String, i64)]| rows.iter().find(|(t, _)| t == "intake_jobs").unwrap().1;
    let after = rows(&l.db);
    let created = jobs(&after) - jobs(&before);
    assert_eq!(
        l.sup.store().tasks(10_000).unwrap().len() as i64,
        created,
        "one task per accepted job, none for a refusal"
    );
}

#[test]
fn ecca_serve_receives_a_signed_job_and_checkpoints_on_sigterm() {
    ecca::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let ok = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(common::ecca_command(dir.path()).args([
        "clients",
        "add",
        "acme",
        "--name",
        "Acme",
        "--budget-usd",
        "100",
    ]));
    // Without its secret, serve runs with the webhook off and says how to turn it on.
    let mut bare = common::ecca_command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(bare.stdout.take().unwrap());
    let mut said = String::new();
    while !said.contains("stops it") {
        let n = std::io::BufRead::read_line(&mut out, &mut said).unwrap();
        assert!(n > 0, "serve ended early: {said}");
    }
    assert!(
        said.contains("webhook off") && said.contains("ecca containers secret upwork-webhook"),
        "{said}"
    );
    assert!(!said.contains("receiving jobs"), "{said}");
    ok(common::ecca_command(dir.path()).args(["serve", "--stop"]));
    assert!(bare.wait().unwrap().success());
    ok(common::ecca_command(dir.path())
        .args([
            "containers",
            "secret",
            "upwork-webhook",
            "--from-env",
            "WEBHOOK_SECRET",
        ])
        .env("WEBHOOK_SECRET", std::str::from_utf8(SECRET).unwrap()));

    let mut serve = common::ecca_command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(serve.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "serve ended before listening: {printed}");
        printed.push_str(&line);
        if let Some(at) = line.find("http://") {
            break line[at..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(';')
                .to_string();
        }
    };
    let now = ecca::time::now_ms() / 1000;
    let body = job("upwork-serve-1", "acme");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, reply) = rt.block_on(post(&url, body.clone(), &signed(now, &body)));
    assert_eq!(status, 201, "{reply}");
    let task_id = reply["task_id"].as_str().unwrap().to_string();

    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = serve.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{printed}{rest}");
    assert!(rest.contains("ecca serve stopped by SIGTERM"), "{rest}");
    // The job's task is in the store, received once, at rest (delivered to the gate, or
    // interrupted at its checkpoint for `ecca resume`).
    let out = common::ecca_command(dir.path())
        .args(["tasks", "--json"])
        .output()
        .unwrap();
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task_id.as_str())
        .unwrap_or_else(|| panic!("{task_id} in {tasks}"));
    let status = task["status"].as_str().unwrap();
    assert!(
        ["awaiting_approval", "interrupted"].contains(&status),
        "{status}: {task}"
    );
}
