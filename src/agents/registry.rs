//! The agent kinds ecca can run, read from `kinds.toml`: one table per agent with its
//! command, arguments, environment and seeded files as templates. Adding an agent that
//! speaks one of the known output formats is a table, not a code path.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const KINDS: &str = include_str!("kinds.toml");

/// How one third-party agent is started and read.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentKindSpec {
    #[serde(skip)]
    pub name: String,
    pub display: String,
    /// The version ecca was built against (`scripts/install_agents.sh` installs it).
    pub version: String,
    /// Relative to the agents directory.
    pub program: String,
    /// `anthropic` or `openai`: whose endpoint and key the agent gets.
    pub provider: String,
    /// Which parser reads its output: `claude`, `codex` or `aider`.
    pub parser: String,
    /// The model when the config names none.
    pub model: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files written under the run's private home before start, path → content.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The values a run fills the templates with.
pub struct Fill<'a> {
    pub prompt: &'a str,
    pub model: &'a str,
    pub budget_usd: &'a str,
    pub home: &'a Path,
    pub worktree: &'a Path,
    pub base_url: &'a str,
    pub api_key: &'a str,
    pub analytics: &'a Path,
    /// ecca's price of the model in dollars per token, as decimals.
    pub input_per_token: &'a str,
    pub output_per_token: &'a str,
}

impl Fill<'_> {
    /// The template with every placeholder replaced. `{api_key}` only goes where it is
    /// asked for (the environment), so a template cannot leak it by accident elsewhere.
    fn apply(&self, template: &str, with_key: bool) -> String {
        let mut out = template
            .replace("{model}", self.model)
            .replace("{budget_usd}", self.budget_usd)
            .replace("{home}", &self.home.to_string_lossy())
            .replace("{worktree}", &self.worktree.to_string_lossy())
            .replace("{base_url}", self.base_url)
            .replace("{analytics}", &self.analytics.to_string_lossy())
            .replace("{input_per_token}", self.input_per_token)
            .replace("{output_per_token}", self.output_per_token);
        out = if with_key {
            out.replace("{api_key}", self.api_key)
        } else {
            out.replace("{api_key}", "")
        };
        // The prompt last: its own text may contain braces that look like placeholders.
        out.replace("{prompt}", self.prompt)
    }
}

impl AgentKindSpec {
    /// The executable under `agents_dir`.
    pub fn program_path(&self, agents_dir: &Path) -> PathBuf {
        agents_dir.join(&self.program)
    }

    pub fn args(&self, fill: &Fill) -> Vec<String> {
        self.args.iter().map(|a| fill.apply(a, false)).collect()
    }

    pub fn env(&self, fill: &Fill) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), fill.apply(v, true)))
            .collect()
    }

    /// The files to seed, with their paths under the run's home.
    pub fn files(&self, fill: &Fill) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .map(|(path, content)| (fill.home.join(path), fill.apply(content, false)))
            .collect()
    }
}

/// Every kind in `kinds.toml`, by name.
pub fn kinds() -> Result<Vec<AgentKindSpec>, String> {
    let table: BTreeMap<String, AgentKindSpec> =
        toml::from_str(KINDS).map_err(|e| format!("the built-in agent kinds do not parse: {e}"))?;
    Ok(table
        .into_iter()
        .map(|(name, mut spec)| {
            spec.name = name;
            spec
        })
        .collect())
}

/// The kind named `name` (`claude-code`, `codex`, `aider`).
pub fn kind(name: &str) -> Result<AgentKindSpec, String> {
    let all = kinds()?;
    let names: Vec<String> = all.iter().map(|k| k.name.clone()).collect();
    all.into_iter().find(|k| k.name == name).ok_or_else(|| {
        format!(
            "agent {name:?} is not one ecca runs; use builtin or one of {}",
            names.join(", ")
        )
    })
}

/// Where the agents are installed: `$ECCA_AGENTS_DIR`, else `~/.cache/ecca/agents` (where
/// `scripts/install_agents.sh` puts them).
pub fn default_agents_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ECCA_AGENTS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/ecca/agents")
}

/// Whether a kind's program is installed at the pinned version, as a sentence.
pub struct Installed {
    pub usable: bool,
    pub found: Option<String>,
    pub detail: String,
}

/// Runs the program's `--version` (with its home pointed at a scratch directory, so a
/// check writes nothing into the operator's own) and compares it with the pin.
pub fn check_installed(spec: &AgentKindSpec, agents_dir: &Path) -> Installed {
    let program = spec.program_path(agents_dir);
    if !program.exists() {
        return Installed {
            usable: false,
            found: None,
            detail: format!(
                "not installed: {} does not exist; run scripts/install_agents.sh",
                program.display()
            ),
        };
    }
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return Installed {
                usable: false,
                found: None,
                detail: format!("could not make a scratch home to run --version: {e}"),
            };
        }
    };
    let output = std::process::Command::new(&program)
        .arg("--version")
        .env("HOME", scratch.path())
        .env("CODEX_HOME", scratch.path())
        .stdin(std::process::Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            return Installed {
                usable: false,
                found: None,
                detail: format!("{} could not run: {e}", program.display()),
            };
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let found = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| w.split('.').count() == 3 && w.split('.').all(|p| !p.is_empty()))
        .map(str::to_string);
    match &found {
        Some(v) if *v == spec.version => Installed {
            usable: true,
            found: found.clone(),
            detail: format!("{} {v} at {}", spec.display, program.display()),
        },
        Some(v) => Installed {
            usable: false,
            found: found.clone(),
            detail: format!(
                "version {v} is installed, ecca reads the output of {}; run scripts/install_agents.sh",
                spec.version
            ),
        },
        None => Installed {
            usable: false,
            found: None,
            detail: format!(
                "{} --version printed no version (exit {}); reinstall with scripts/install_agents.sh",
                program.display(),
                output.status
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds_parse_and_keep_the_key_out_of_arguments_and_files() {
        let all = kinds().unwrap();
        let names: Vec<&str> = all.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["aider", "claude-code", "codex"]);
        let home = Path::new("/h");
        let fill = Fill {
            prompt: "do {model} things",
            model: "m1",
            budget_usd: "1.500000",
            home,
            worktree: Path::new("/w"),
            base_url: "http://127.0.0.1:9/v1",
            api_key: "sk-secret",
            analytics: Path::new("/h/a.jsonl"),
            input_per_token: "0.000003",
            output_per_token: "0.000015",
        };
        for spec in &all {
            let args = spec.args(&fill).join(" ");
            assert!(!args.contains("sk-secret"), "{}: {args}", spec.name);
            for (_, content) in spec.files(&fill) {
                assert!(!content.contains("sk-secret"), "{}", spec.name);
            }
            let env = spec.env(&fill);
            assert!(
                env.iter().any(|(_, v)| v == "sk-secret"),
                "{} gets its key from the environment",
                spec.name
            );
        }
        let claude = kind("claude-code").unwrap();
        let args = claude.args(&fill);
        // The prompt is filled last, verbatim, braces and all.
        assert!(args.contains(&"do {model} things".to_string()));
        assert!(args.contains(&"1.500000".to_string()));
        let codex = kind("codex").unwrap();
        let files = codex.files(&fill);
        assert_eq!(files[0].0, Path::new("/h/.codex/config.toml"));
        assert!(files[0].1.contains("base_url = \"http://127.0.0.1:9/v1\""));
        let aider = kind("aider").unwrap();
        let metadata: serde_json::Value = serde_json::from_str(&aider.files(&fill)[0].1).unwrap();
        assert_eq!(
            metadata["openai/m1"]["output_cost_per_token"],
            serde_json::json!(0.000015)
        );
        assert!(kind("cursor").unwrap_err().contains("not one ecca runs"));
    }
}
