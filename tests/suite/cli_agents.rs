//! Third-party coding agents run by ecca, with the real CLI (installed at its pinned version
//! by `scripts/install_agents.sh`) against a local stand-in of the model API: the agent
//! writes in the run's worktree with its own tools, ecca reads its stream into events and
//! cost rows, judges it, runs the repository's checks and the evaluator, and delivers the
//! branch after approval, as for the built-in loop. The API key reaches the agent's
//! environment and nothing else.

use crate::common;

use common::fixture_repo::{python_project, run_git};
use common::repo_run::{EccaHome, Role, acme_with_repo, evaluator_passes, role_of, use_model};
use common::{MockLlm, Scripted, anthropic_event, read_store, require_docker_and_sandbox};
use serde_json::{Value, json};
use std::sync::Arc;

/// Unique enough that any hit outside the agent's environment is a leak.
pub(crate) const KEY: &str = "sk-ant-agent-canary-5Lq2Xw8Rv";
/// ecca's own key, for its own calls.
const ECCA_KEY: &str = "sk-ant-ecca-own-key-not-the-clients";

pub(crate) const SHOUT_PY: &str = "def shout(name):\n    return name.upper() + \"!\"\n";

/// The agent's program must be there: the test script installs it.
pub(crate) fn require_agent(home: &EccaHome, kind: &str) {
    let report = home.json(&["agents", "check", "--json"]);
    let row = report["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["kind"] == kind).cloned())
        .unwrap_or_default();
    assert_eq!(
        row["installed"], true,
        "{kind} is not installed at its pinned version ({}); run scripts/install_agents.sh",
        row["detail"]
    );
}

/// Whether a Messages request carries a tool result (Claude Code's second turn).
pub(crate) fn has_tool_result(request: &Value) -> bool {
    request["messages"].as_array().is_some_and(|messages| {
        messages.iter().any(|m| {
            m["content"]
                .as_array()
                .is_some_and(|c| c.iter().any(|p| p["type"] == "tool_result"))
        })
    })
}

/// One Messages stream: a block of `block` (a tool call or text) with the given usage.
pub(crate) fn claude_turn(block: Value, delta: Value, stop: &str, usage: [u64; 4]) -> Scripted {
    let [input, output, cache_write, cache_read] = usage;
    Scripted::sse(vec![
        anthropic_event(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_agent","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,
                "usage":{"input_tokens":input,"cache_creation_input_tokens":cache_write,"cache_read_input_tokens":cache_read,"output_tokens":1}}}),
        ),
        anthropic_event(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":block}),
        ),
        anthropic_event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":delta}),
        ),
        anthropic_event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        anthropic_event(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":stop,"stop_sequence":null},"usage":{"output_tokens":output}}),
        ),
        anthropic_event("message_stop", json!({"type":"message_stop"})),
    ])
}

/// Claude Code's turn `n` (from 0) for a request: what a test scripts.
pub(crate) type ClaudeTurns = dyn Fn(&Value, usize) -> Scripted + Send + Sync;

/// The model behind both Claude Code and ecca's own evaluator: the evaluator passes the
/// change; Claude Code's requests (told apart by their system prompt) get `turns`.
pub(crate) async fn model_for_claude(turns: Arc<ClaudeTurns>) -> MockLlm {
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    MockLlm::start(
        vec![],
        Some(Arc::new(move |request: &Value| {
            if role_of(request) == Role::Evaluator {
                return evaluator_passes();
            }
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            turns(request, n)
        })),
    )
    .await
}

/// Claude Code's first turn writes `greet/shout.py` with its Write tool; the next says
/// it is done.
async fn claude_and_evaluator() -> MockLlm {
    model_for_claude(write_then_done("greet/shout.py".into())).await
}

/// Claude Code's turns: write `path` with its Write tool, then say it is done.
pub(crate) fn write_then_done(path: String) -> Arc<ClaudeTurns> {
    Arc::new(move |request: &Value, _| {
        if has_tool_result(request) {
            claude_turn(
                json!({"type":"text","text":""}),
                json!({"type":"text_delta","text":"Done: the file is written."}),
                "end_turn",
                [1001, 99, 11, 4000],
            )
        } else {
            write_turn(&path, SHOUT_PY)
        }
    })
}

pub(crate) fn write_turn(path: &str, content: &str) -> Scripted {
    let input = json!({"file_path": path, "content": content});
    claude_turn(
        json!({"type":"tool_use","id":"toolu_agent_1","name":"Write","input":{}}),
        json!({"type":"input_json_delta","partial_json": input.to_string()}),
        "tool_use",
        [1234, 567, 2345, 3456],
    )
}

pub(crate) fn bash_turn(command: &str) -> Scripted {
    let input = json!({"command": command, "description": "check"});
    claude_turn(
        json!({"type":"tool_use","id":"toolu_agent_2","name":"Bash","input":{}}),
        json!({"type":"input_json_delta","partial_json": input.to_string()}),
        "tool_use",
        [1234, 567, 2345, 3456],
    )
}

/// A stream that starts and then sends nothing more, never ending.
pub(crate) fn stalled_turn() -> Scripted {
    let mut turn = claude_turn(
        json!({"type":"text","text":""}),
        json!({"type":"text_delta","text":"Thinking"}),
        "end_turn",
        [100, 1, 0, 0],
    );
    turn.events.truncate(1);
    turn.hang = true;
    turn
}

/// A client `acme` on a fresh Python repository, the agent checked, the model in place.
pub(crate) struct AgentHome {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) home: EccaHome,
    pub(crate) bare: std::path::PathBuf,
    pub(crate) model: MockLlm,
}

pub(crate) async fn agent_home(model: MockLlm, config: &str) -> AgentHome {
    agent_home_for("claude-code", model, config).await
}

/// The same for agent `kind`: the model answers both providers (Anthropic for ecca's own
/// evaluator and Claude Code, the OpenAI formats for Codex CLI and Aider).
pub(crate) async fn agent_home_for(kind: &str, model: MockLlm, config: &str) -> AgentHome {
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let home_dir = dir.path().join("home");
    std::fs::create_dir_all(&home_dir).unwrap();
    std::fs::write(home_dir.join("config.toml"), config).unwrap();
    let mut home = EccaHome::new(&home_dir);
    require_agent(&home, kind);
    acme_with_repo(&home, &bare.to_string_lossy());
    use_model(&mut home, &model);
    home.env("ANTHROPIC_API_KEY", KEY);
    home.env("OPENAI_BASE_URL", &format!("{}/v1", model.url));
    home.env("OPENAI_API_KEY", KEY);
    AgentHome {
        _dir: dir,
        home,
        bare,
        model,
    }
}

/// The real console on `h`'s data dir (it starts `ecca serve`, stopped when the guard
/// drops), and `ecca ARGS` started from another terminal with the model's endpoint and key.
pub(crate) fn console_beside(
    h: &AgentHome,
    args: &[&str],
) -> (
    common::pty::Console,
    std::process::Child,
    crate::daemon::StopDaemons,
) {
    let d = h.home.dir.clone();
    let stop = crate::daemon::StopDaemons(d.clone());
    let d_str = d.to_string_lossy().into_owned();
    let env = [
        ("ANTHROPIC_BASE_URL", h.model.url.as_str()),
        ("ANTHROPIC_API_KEY", KEY),
    ];
    let console = common::pty::start_binary(&["--data-dir", &d_str], &env, 160, 40);
    console
        .screen
        .wait_for("No runs yet. Press n to launch a task.", 120);
    let mut run = common::ecca_command(&d);
    run.args(args);
    for (k, v) in env {
        run.env(k, v);
    }
    run.stdout(std::process::Stdio::piped());
    (console, run.spawn().unwrap(), stop)
}

/// Processes whose working directory is under `dir` (an agent, or a tool it started).
pub(crate) fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

/// The agent's rows of task T-0001: purpose and cost.
pub(crate) fn agent_rows(home: &EccaHome) -> Vec<(String, i64)> {
    common::read_rows(
        &home.db(),
        "SELECT purpose, cost_micros FROM cost_log WHERE task_id = 'T-0001' AND purpose LIKE 'agent:%' ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn is_claude(request: &common::Recorded) -> bool {
    request
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("claude-cli/"))
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_writes_in_the_worktree_is_priced_to_its_own_figure_and_delivers_a_branch() {
    let AgentHome {
        _dir: _keep,
        home,
        bare,
        model,
    } = agent_home(claude_and_evaluator().await, "").await;
    let home_dir = home.dir.clone();
    // The client's own key, stored encrypted, is the one Claude Code gets; ecca's own
    // calls (the evaluator) keep ecca's key.
    let mut home = home;
    home.env("ANTHROPIC_API_KEY", ECCA_KEY);
    let stored = home.run_with(
        &[
            "credentials",
            "add",
            "--client",
            "acme",
            "--provider",
            "anthropic",
            "--from-env",
            "ACME_ANTHROPIC",
        ],
        &[("ACME_ANTHROPIC", KEY)],
    );
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let listed = home.ok(&["credentials", "list"]);
    assert!(listed.contains("acme"), "{listed}");
    assert!(
        listed.contains(&format!("****{}", &KEY[KEY.len() - 4..])),
        "{listed}"
    );
    assert!(!listed.contains(KEY), "{listed}");
    // Without a key of ecca's own, Claude Code is usable for acme alone, with its key.
    let keyless = EccaHome::new(&home.dir);
    let usable = |args: &[&str]| {
        let report = keyless.json(args);
        report["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["kind"] == "claude-code").cloned())
            .map(|r| r["usable"] == true)
    };
    assert_eq!(
        usable(&["agents", "check", "--json", "--client", "acme"]),
        Some(true)
    );
    assert_eq!(usable(&["agents", "check", "--json"]), Some(false));
    let run = run_claude(&home, &[]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    assert_eq!(run["result_status"], "SUCCESS", "{run:#}");
    let repo = &run["repo"];
    let worktree = home_dir
        .join("worktrees")
        .join(repo["worktree"].as_str().expect("a worktree"));
    assert_eq!(
        std::fs::read_to_string(worktree.join("greet/shout.py")).unwrap(),
        SHOUT_PY,
        "Claude Code wrote the file with its own tool, in the worktree"
    );
    let checks = repo["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["kind"] == "test" && c["status"] == "passed"),
        "the repository's own tests ran after the agent: {checks:#?}"
    );

    // Two turns from Claude Code (the second carries the tool's result), one evaluation.
    let requests = model.requests.lock().unwrap().clone();
    let claude: Vec<_> = requests.iter().filter(|r| is_claude(r)).collect();
    assert_eq!(claude.len(), 2, "Claude Code's calls");
    assert!(!has_tool_result(&claude[0].body) && has_tool_result(&claude[1].body));
    assert_eq!(claude[0].body["model"], "claude-sonnet-4-5");
    assert_eq!(
        claude[0]
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(KEY)
    );
    let evaluations: Vec<_> = requests
        .iter()
        .filter(|r| role_of(&r.body) == Role::Evaluator)
        .collect();
    assert_eq!(evaluations.len(), 1);
    assert_eq!(
        evaluations[0]
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(ECCA_KEY)
    );

    // One row per call at ecca's prices (rounded up to the micro-dollar), and a row with the
    // difference to Claude Code's own figure ($0.0277668 for this usage at its Sonnet
    // prices): the agent's rows add up to what it reports.
    let all: Vec<(String, i64, i64, i64, i64, i64)> = common::read_rows(
        &home.db(),
        "SELECT purpose, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_micros
         FROM cost_log WHERE task_id = 'T-0001' AND purpose LIKE 'agent:%' ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    );
    assert_eq!(
        all[..2],
        [
            (
                "agent:claude-code".to_string(),
                1234,
                567,
                2345,
                3456,
                22_038
            ),
            ("agent:claude-code".to_string(), 1001, 99, 11, 4000, 5_730),
        ],
        "{all:#?}"
    );
    let agent_total: i64 = all.iter().map(|r| r.5).sum();
    assert_eq!(
        agent_total, 27_767,
        "the rows add up to Claude Code's own $0.027767: {all:#?}"
    );
    assert_eq!(all.len(), 3, "one row carries the difference: {all:#?}");
    assert_eq!(all[2].0, "agent:claude-code:reported-difference");
    // The task's cost is every row: the agent's and the evaluator's.
    let (task_cost, rows_total): (i64, i64) = read_store(
        &home.db(),
        "code_tasks",
        "SELECT cost_micros, (SELECT SUM(cost_micros) FROM cost_log WHERE task_id = 'T-0001') FROM code_tasks WHERE id = 'T-0001'",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap();
    assert_eq!(task_cost, rows_total);

    // The diff is what the agent changed; approval delivers the branch.
    let diff = home.ok(&["diff", "T-0001"]);
    assert!(diff.contains("+def shout(name):"), "{diff}");
    home.ok(&["approve", "T-0001"]);
    let tree = run_git(
        None,
        [
            "--git-dir",
            &bare.to_string_lossy(),
            "show",
            "agt/T-0001:greet/shout.py",
        ],
        None,
    );
    assert_eq!(
        tree, SHOUT_PY,
        "the delivered branch holds the agent's file"
    );

    // The key is in no file ecca keeps (store, logs, agent homes) and in no output.
    for file in files_under(&home_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the API key leaked into {}",
            file.display()
        );
    }
    let transcript = home.transcript.lock().unwrap().join("\n");
    assert!(
        !transcript.contains(KEY),
        "the API key leaked into ecca's output"
    );
}

/// `ecca run`'s arguments for task T-0001 by Claude Code, its JSON document at the end.
pub(crate) const RUN_CLAUDE: [&str; 8] = [
    "run",
    "--client",
    "acme",
    "--task",
    "Add a shout helper to greet",
    "--agent",
    "claude-code",
    "--json",
];

/// Runs task T-0001 with Claude Code and returns `ecca run --json`'s document.
pub(crate) fn run_claude(home: &EccaHome, extra: &[&str]) -> Value {
    let mut args = RUN_CLAUDE.to_vec();
    args.extend_from_slice(extra);
    home.json(&args)
}

/// One OpenAI Responses stream: `item` finished, then the response completed with its
/// usage (`input` includes the cached and cache-written tokens, as OpenAI counts them).
fn responses_turn(item: Value, usage: [u64; 4]) -> Scripted {
    let [input, output, cached, cache_write] = usage;
    let done = json!({"type":"response.output_item.done","output_index":0,"item":item});
    // Each response its own id: Codex records its usage per response id.
    let id = format!("resp_ecca_{input}_{output}");
    let completed = json!({"type":"response.completed","response":{"id":id,"usage":{
        "input_tokens":input,"input_tokens_details":{"cached_tokens":cached,"cache_write_tokens":cache_write},
        "output_tokens":output,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":input + output}}});
    Scripted::sse(vec![
        format!("event: response.output_item.done\ndata: {done}\n\n"),
        format!("event: response.completed\ndata: {completed}\n\n"),
    ])
}

/// Codex's first call writes `greet/shout.py` with `apply_patch` through its command tool
/// (how it edits files with a model it has no metadata for); the second says it is done.
async fn codex_and_evaluator() -> MockLlm {
    MockLlm::start(
        vec![],
        Some(Arc::new(|request: &Value| {
            if role_of(request) == Role::Evaluator {
                return evaluator_passes();
            }
            let answered = request["input"].as_array().is_some_and(|items| {
                items.iter().any(|i| i["type"] == "function_call_output")
            });
            if answered {
                let message = json!({"type":"message","role":"assistant",
                    "content":[{"type":"output_text","text":"Done: greet/shout.py written."}]});
                return responses_turn(message, [1001, 99, 400, 0]);
            }
            let patch: String = SHOUT_PY.lines().map(|l| format!("+{l}\n")).collect();
            let cmd = format!(
                "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: greet/shout.py\n{patch}*** End Patch\nEOF\n"
            );
            let call = json!({"type":"function_call","call_id":"call_ecca_1","name":"exec_command",
                "arguments": json!({"cmd": cmd}).to_string()});
            responses_turn(call, [1234, 567, 345, 234])
        })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_writes_in_the_worktree_and_each_call_is_priced_by_eccas_table() {
    // A model Codex has no metadata for, priced in ecca's config.
    let config = "[agents.models]\ncodex = \"stub-model\"\n\n[prices.\"stub-model\"]\ninput = 2.0\noutput = 8.0\ncache_write = 2.5\ncache_read = 0.5\n";
    let h = agent_home_for("codex", codex_and_evaluator().await, config).await;
    let run = h.home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Add a shout helper to greet",
        "--agent",
        "codex",
        "--json",
    ]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    assert_eq!(run["result_status"], "SUCCESS", "{run:#}");
    let worktree = h
        .home
        .dir
        .join("worktrees")
        .join(run["repo"]["worktree"].as_str().expect("a worktree"));
    assert_eq!(
        std::fs::read_to_string(worktree.join("greet/shout.py")).unwrap(),
        SHOUT_PY,
        "Codex wrote the file with its own patch tool, in the worktree"
    );
    let codex_calls: Vec<Value> = h
        .model
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.body["input"].is_array())
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(codex_calls.len(), 2, "Codex's calls");
    assert_eq!(codex_calls[0]["model"], "stub-model");
    // One row per call, from Codex's own per-call record, at ecca's prices: the cached and
    // cache-written tokens are taken out of the input and priced as such.
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = common::read_rows(
        &h.home.db(),
        "SELECT purpose, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_micros
         FROM cost_log WHERE task_id = 'T-0001' AND purpose LIKE 'agent:%' ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    );
    assert_eq!(
        rows,
        [
            // 655 × $2 + 567 × $8 + 234 × $2.5 + 345 × $0.5 per million = $0.0066035 → 6,604
            ("agent:codex".to_string(), 655, 567, 234, 345, 6_604),
            // 601 × $2 + 99 × $8 + 400 × $0.5 per million = $0.002194
            ("agent:codex".to_string(), 601, 99, 0, 400, 2_194),
        ],
    );
    let diff = h.home.ok(&["diff", "T-0001"]);
    assert!(diff.contains("+def shout(name):"), "{diff}");
}

/// Aider's one edit call, answered in its whole-file format (the path on its own line, then
/// the file in a fence), with the usage the server reports.
async fn aider_and_evaluator() -> MockLlm {
    MockLlm::start(
        vec![],
        Some(Arc::new(|request: &Value| {
            if role_of(request) == Role::Evaluator {
                return evaluator_passes();
            }
            let content = format!("greet/shout.py\n```python\n{SHOUT_PY}```\n");
            Scripted::json(&json!({
                "id": "chatcmpl-ecca-1", "object": "chat.completion", "model": "stub-model",
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801}
            }))
        })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_writes_in_the_worktree_and_its_call_is_priced_by_eccas_table() {
    let config = "[agents.models]\naider = \"stub-model\"\n\n[prices.\"stub-model\"]\ninput = 2.0\noutput = 8.0\n";
    let h = agent_home_for("aider", aider_and_evaluator().await, config).await;
    let run = h.home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Add a shout helper to greet",
        "--agent",
        "aider",
        "--json",
    ]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    assert_eq!(run["result_status"], "SUCCESS", "{run:#}");
    let worktree = h
        .home
        .dir
        .join("worktrees")
        .join(run["repo"]["worktree"].as_str().expect("a worktree"));
    assert_eq!(
        std::fs::read_to_string(worktree.join("greet/shout.py")).unwrap(),
        SHOUT_PY,
        "Aider wrote the file, in the worktree, and did not commit it"
    );
    // Its one call, from its analytics log, at ecca's prices (which ecca also gave Aider in
    // a model-metadata file, so Aider's own figure is the same).
    let rows: Vec<(String, i64, i64, i64)> = common::read_rows(
        &h.home.db(),
        "SELECT purpose, input_tokens, output_tokens, cost_micros
         FROM cost_log WHERE task_id = 'T-0001' AND purpose LIKE 'agent:%' ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    );
    // 1,234 × $2 + 567 × $8 per million = $0.007004
    assert_eq!(rows, [("agent:aider".to_string(), 1234, 567, 7_004)]);
    let diff = h.home.ok(&["diff", "T-0001"]);
    assert!(diff.contains("+def shout(name):"), "{diff}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_exiting_0_after_an_api_failure_is_judged_failed() {
    // The key refused: Aider prints the error and exits 0, having sent no message.
    let model = MockLlm::start(
        vec![],
        Some(Arc::new(|_: &Value| {
            Scripted::status(
                401,
                r#"{"error":{"message":"invalid api key","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            )
        })),
    )
    .await;
    let config = "[agents.models]\naider = \"stub-model\"\n\n[prices.\"stub-model\"]\ninput = 2.0\noutput = 8.0\n";
    let h = agent_home_for("aider", model, config).await;
    let run = h.home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Add a shout helper to greet",
        "--agent",
        "aider",
        "--json",
    ]);
    assert_eq!(run["status"], "failed", "{run:#}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("aider failed"), "{reason}");
    assert!(agent_rows(&h.home).is_empty(), "no call was charged");
}
