//! What supervising a third-party coding agent costs ecca: its CPU while an agent streams
//! 100 events a second, and the time from the agent's exit to the approval gate (checks
//! excluded: no tool servers here, so they are skipped); then four agents streaming
//! together, and how many text events reach a subscriber.
//!
//! The agent is a stand-in program at the Claude Code kind's path that speaks its
//! `stream-json` (partial messages: a text delta per event), writes a file in the worktree
//! and prints its result; everything else is the real supervisor: worktree from a local
//! repository, the child in its own group, parsing, the bus with a subscriber, cost rows,
//! the evaluator (offline model) and the gate.
//!
//! cargo bench --bench agent_overhead

#[path = "common/proc_usage.rs"]
#[allow(dead_code)] // the thread figures are the console benches'
mod proc_usage;

use ecca::supervisor::{Command, Delivery, Event, NewTask, Supervisor, SupervisorOptions};
use proc_usage::{process_cpu, threads_cpu_ms};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECONDS: u64 = 10;
const EVENTS_PER_SECOND: u64 = 100;

/// The stand-in agent: `--version` answers as the pinned Claude Code; a run streams
/// `SECONDS` × `EVENTS_PER_SECOND` text deltas, writes `hello.py`, notes the time it exits in
/// `exit_at`, prints a successful result and exits.
fn stand_in(exit_at: &Path) -> String {
    format!(
        r#"#!/usr/bin/env python3
import json, sys, time
if "--version" in sys.argv:
    print("2.1.197 (Claude Code)"); sys.exit(0)
def out(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
out({{"type": "system", "subtype": "init", "session_id": "bench", "model": "claude-sonnet-4-5", "cwd": "."}})
out({{"type": "stream_event", "event": {{"type": "message_start", "message": {{"model": "claude-sonnet-4-5", "usage": {{"input_tokens": 1234, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}}}}}})
out({{"type": "stream_event", "event": {{"type": "content_block_start", "index": 0, "content_block": {{"type": "text", "text": ""}}}}}})
start = time.monotonic()
n = {total}
for i in range(n):
    target = start + i / {rate}
    now = time.monotonic()
    if target > now:
        time.sleep(target - now)
    out({{"type": "stream_event", "event": {{"type": "content_block_delta", "index": 0, "delta": {{"type": "text_delta", "text": "line %d of the agent's reply, streamed\n" % i}}}}}})
out({{"type": "stream_event", "event": {{"type": "content_block_stop", "index": 0}}}})
out({{"type": "stream_event", "event": {{"type": "message_delta", "delta": {{"stop_reason": "end_turn"}}, "usage": {{"output_tokens": 2000}}}}}})
out({{"type": "stream_event", "event": {{"type": "message_stop"}}}})
open("hello.py", "w").write('print("hello")\n')
usage = {{"inputTokens": 1234, "outputTokens": 2000, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0, "costUSD": 0.033702}}
out({{"type": "result", "subtype": "success", "is_error": False, "result": "Done.", "total_cost_usd": 0.033702, "modelUsage": {{"claude-sonnet-4-5": usage}}, "permission_denials": []}})
open("{exit_at}", "w").write(repr(time.time()))
"#,
        total = SECONDS * EVENTS_PER_SECOND,
        rate = EVENTS_PER_SECOND,
        exit_at = exit_at.display(),
    )
}

fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

/// A bare repository with one commit on `main`.
fn repository(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "bench\n").expect("readme");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "init"]);
    let bare = dir.join("repo.git");
    git(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            &work.to_string_lossy(),
            &bare.to_string_lossy(),
        ],
    );
    bare
}

struct Figures {
    cpu_percent: f64,
    /// Streamed-text events the subscriber received: what an attached console reads.
    delta_events_per_second: f64,
    exit_to_gate_ms: f64,
    /// CPU milliseconds while the agent streamed, by thread name (threads still alive at
    /// its exit).
    by_thread: Vec<(String, f64)>,
}

/// Each thread name's CPU milliseconds between two readings of [`threads_cpu_ms`].
fn by_thread(
    before: &std::collections::HashMap<(String, String), f64>,
    after: &std::collections::HashMap<(String, String), f64>,
) -> Vec<(String, f64)> {
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    for (thread, ms) in after {
        *by_name.entry(thread.1.clone()).or_default() +=
            ms - before.get(thread).copied().unwrap_or(0.0);
    }
    let mut rows: Vec<(String, f64)> = by_name.into_iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}

/// One round: `agents` stand-ins started together, each on a task of its own; the window is
/// from the first agent's start to the last one's exit.
fn one_run(round: usize, agents_at_once: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let agents = dir.path().join("agents");
    let program = agents.join("node_modules/.bin/claude");
    std::fs::create_dir_all(program.parent().expect("parent")).expect("agents dir");
    let exit_at = dir.path().join("exit_at");
    std::fs::write(&program, stand_in(&exit_at)).expect("stand-in");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bare = repository(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let config = ecca::config::Config::parse(&format!(
        "[models]\nprovider = \"offline\"\n[agents]\ndir = \"{}\"\n",
        agents.display()
    ))
    .expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut options = SupervisorOptions::new(data.clone(), config);
        options.env = std::sync::Arc::new(|k| match k {
            "ANTHROPIC_API_KEY" => Some("sk-ant-bench-key".into()),
            _ => None,
        });
        let sup = Supervisor::start(options).await.expect("supervisor");
        sup.execute(Command::UpsertClient {
            id: "acme".into(),
            name: "Acme".into(),
            monthly_budget_micros: 100_000_000,
        })
        .await
        .expect("client");
        ecca::secrets::set_repo(&data, "acme", &bare.to_string_lossy()).expect("repo");
        let mut events = sup.subscribe();
        for agent in 0..agents_at_once {
            sup.execute(Command::StartTask {
                task: NewTask {
                    client_id: "acme".into(),
                    title: format!("Bench run {round} agent {agent}"),
                    description: String::new(),
                    stack: "python".into(),
                    source: "manual".into(),
                    agent_kind: "claude-code".into(),
                    budget_micros: Some(5_000_000),
                    provider: None,
                    base_branch: None,
                    acceptance: vec![],
                    price_micros: None,
                },
            })
            .await
            .expect("task");
        }
        let (mut started, mut ended, mut at_gate, mut delta_events) = (0, 0, 0, 0u64);
        let mut streaming = None;
        let mut exited = None;
        let gate_at = loop {
            let delivery = tokio::time::timeout(Duration::from_secs(120), events.next())
                .await
                .expect("an event within 120 s")
                .expect("the bus");
            let Delivery::Event(event) = delivery else {
                continue;
            };
            match event.as_ref() {
                Event::ModelStarted { purpose, .. } if purpose.starts_with("agent") => {
                    started += 1;
                    if started == 1 {
                        streaming = Some((process_cpu(), Instant::now(), threads_cpu_ms()));
                    }
                }
                Event::ModelDelta { .. } | Event::ModelDeltas { .. } if exited.is_none() => {
                    delta_events += 1;
                }
                Event::Note { text, .. } if text.contains(" exited (") => {
                    ended += 1;
                    if ended == agents_at_once {
                        exited = Some((process_cpu(), Instant::now(), threads_cpu_ms()));
                    }
                }
                Event::AwaitingApproval { .. } => {
                    at_gate += 1;
                    if at_gate == agents_at_once {
                        break SystemTime::now();
                    }
                }
                Event::RunFinished { status, reason, .. } => {
                    panic!("the run ended {status}: {reason:?}")
                }
                _ => {}
            }
        };
        let exit_at: f64 = std::fs::read_to_string(&exit_at)
            .expect("the stand-in noted its exit")
            .trim()
            .parse()
            .expect("a time");
        let gate = gate_at
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let (cpu_start, wall_start, threads_start) = streaming.expect("the agent started");
        let (cpu_end, wall_end, threads_end) = exited.expect("the agent's exit was noted");
        // From the agent's start to its exit: the stand-in's own CPU is its process's, so
        // this is ecca's alone.
        let wall = wall_end.duration_since(wall_start).as_secs_f64().max(0.001);
        Figures {
            cpu_percent: (cpu_end - cpu_start) / wall * 100.0,
            delta_events_per_second: delta_events as f64 / wall,
            exit_to_gate_ms: (gate - exit_at) * 1000.0,
            by_thread: by_thread(&threads_start, &threads_end),
        }
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Agents streaming together in the second part: the supervisor's default concurrency.
const AGENTS_AT_ONCE: usize = 4;

fn main() {
    println!(
        "an agent streaming {EVENTS_PER_SECOND} events/s for {SECONDS} s through the real supervisor, 3 runs:"
    );
    let mut cpu = Vec::new();
    let mut gate = Vec::new();
    for round in 0..3 {
        let f = one_run(round, 1);
        println!(
            "   run {}: ecca's CPU {:.2} % of a core while the agent streams; agent exit → approval gate {:.0} ms; {:.0} text events/s",
            round + 1,
            f.cpu_percent,
            f.exit_to_gate_ms,
            f.delta_events_per_second
        );
        let threads: Vec<String> = f
            .by_thread
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.1} ms"))
            .collect();
        println!("      by thread: {}", threads.join(", "));
        cpu.push(f.cpu_percent);
        gate.push(f.exit_to_gate_ms);
    }
    println!(
        "   median: CPU {:.2} % of a core (target ≤ 1 %); exit → gate {:.0} ms",
        median(cpu),
        median(gate)
    );
    println!(
        "{AGENTS_AT_ONCE} agents streaming {EVENTS_PER_SECOND} events/s each, together, 3 runs:"
    );
    let mut cpu = Vec::new();
    for round in 0..3 {
        let f = one_run(round, AGENTS_AT_ONCE);
        println!(
            "   run {}: ecca's CPU {:.2} % of a core ({:.2} % per agent); {:.0} text events/s",
            round + 1,
            f.cpu_percent,
            f.cpu_percent / AGENTS_AT_ONCE as f64,
            f.delta_events_per_second
        );
        cpu.push(f.cpu_percent);
    }
    let all = median(cpu);
    println!(
        "   median: CPU {all:.2} % of a core, {:.2} % per agent",
        all / AGENTS_AT_ONCE as f64
    );
}
