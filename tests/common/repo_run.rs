//! Driving the ecca binary through tasks on a client's repository: one data dir, every
//! command's output kept (so a test can search all of it afterwards), and a scripted model
//! for repository runs that answers by the request's system prompt.

use super::{MockLlm, Scripted, anthropic_stream, ecca_command};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

/// One data dir and the environment every `ecca` command in it gets.
pub struct EccaHome {
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    /// The stdout and stderr of every command run so far.
    pub transcript: Arc<Mutex<Vec<String>>>,
}

impl EccaHome {
    pub fn new(dir: &Path) -> EccaHome {
        EccaHome {
            dir: dir.to_path_buf(),
            env: Vec::new(),
            transcript: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Runs `ecca ARGS` with this home's environment plus `extra`.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = ecca_command(&self.dir);
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("the ecca binary runs");
        self.transcript.lock().unwrap().push(format!(
            "$ ecca {}\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        out
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ecca {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a `--json` command (success or not) and reads its stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ecca {args:?} printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("ecca.db")
    }

    /// The directories under `worktrees/` (none when it does not exist).
    pub fn worktrees(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("worktrees"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The task's row in `ecca tasks --json`.
    pub fn task(&self, id: &str) -> Value {
        let all = self.json(&["tasks", "--json"]);
        let rows = all
            .as_array()
            .cloned()
            .or_else(|| all.get("tasks").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        rows.into_iter()
            .find(|t| t["id"] == id || t["task_id"] == id)
            .unwrap_or_else(|| panic!("task {id} is not in `ecca tasks --json`: {all}"))
    }
}

/// Client `acme` with a repository at `repo` (a path or URL), no token.
pub fn acme_with_repo(home: &EccaHome, repo: &str) {
    add_acme(home);
    home.ok(&["clients", "token", "acme", "--repo", repo]);
}

/// Client `acme` with a $50 month.
pub fn add_acme(home: &EccaHome) {
    home.ok(&[
        "clients",
        "add",
        "acme",
        "--name",
        "Acme",
        "--budget-usd",
        "50",
    ]);
}

/// A shell script that appends its arguments (one line per call) to `log` and then runs the
/// real ecca binary with them: pointed to by `ECCA_BIN`, it records every ecca child.
pub fn recording_wrapper(dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("ecca-recorded");
    let text = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        super::ecca_bin().display()
    );
    std::fs::write(&script, text).expect("write the wrapper script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
    script
}

/// Which of the repository run's model roles a request is for, by its system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Planner,
    Writer,
    Evaluator,
    Other,
}

pub fn role_of(request: &Value) -> Role {
    let system = match &request["system"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    if system == ecca::engine::repo_prompts::SYSTEM_REPO_PLANNER {
        Role::Planner
    } else if system == ecca::engine::repo_prompts::SYSTEM_REPO_WRITER {
        Role::Writer
    } else if system == ecca::engine::prompts::SYSTEM_EVALUATOR {
        Role::Evaluator
    } else {
        Role::Other
    }
}

/// The text of the user prompt of a recorded request.
pub fn prompt_of(request: &Value) -> String {
    let Some(messages) = request["messages"].as_array() else {
        return String::new();
    };
    messages
        .iter()
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The evaluator's answer that passes a deliverable: 9 of 10, no issues.
pub fn evaluator_passes() -> Scripted {
    Scripted::sse(anthropic_stream(
        r#"{"score": 9, "issues": []}"#,
        800,
        40,
        0,
        0,
    ))
}

/// A model for repository runs: the planner answers `plan` (JSON), the writer `writer`'s
/// reply, the evaluator a passing score; anything else a 500 so a surprise shows.
pub async fn repo_model(plan: Value, writer: String) -> MockLlm {
    let plan = plan.to_string();
    MockLlm::start(
        vec![],
        Some(Arc::new(move |request: &Value| match role_of(request) {
            Role::Planner => Scripted::sse(anthropic_stream(&plan, 900, 200, 0, 0)),
            Role::Writer => Scripted::sse(anthropic_stream(&writer, 1200, 400, 0, 0)),
            Role::Evaluator => evaluator_passes(),
            Role::Other => Scripted::status(500, r#"{"error":{"message":"unexpected request"}}"#),
        })),
    )
    .await
}

/// Points `home` at `model` as the Anthropic provider.
pub fn use_model(home: &mut EccaHome, model: &MockLlm) {
    home.env("ANTHROPIC_BASE_URL", &model.url);
    home.env("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key");
}

/// The requests `model` has received for `role`, in order.
pub fn requests_for(model: &MockLlm, role: Role) -> Vec<Value> {
    model
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| role_of(&r.body) == role)
        .map(|r| r.body.clone())
        .collect()
}
