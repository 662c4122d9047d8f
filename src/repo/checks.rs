//! The repository's own checks: how it sets up, lints and tests itself (detected from its
//! files, or set in the client's config), and what a run of one in the sandbox means.
//!
//! Detection reads the file system only. A check that cannot run in the sandbox (the tool is
//! not in the image, dependencies cannot be fetched with no network) is `skipped` with the
//! reason, never passed, and never failed either: a failure must mean the project's own
//! checks said no.

use crate::config::ClientConfig;
use crate::engine::fsm::repo::RepoCommands;
use crate::engine::tools::ExecReport;
use crate::repo::{CheckOutcome, CheckStatus};
use std::path::Path;

/// Most bytes of a check's output kept in its outcome: the end, where failures are summed up.
pub const KEPT_OUTPUT_BYTES: usize = 8 * 1024;

/// npm's placeholder `test` script, which only fails.
const NPM_NO_TEST: &str = "no test specified";

/// How the repository at `root` sets up, lints and tests itself; the client's config comes
/// first, then what its files say. A command nothing names stays `None`.
pub fn detect(root: &Path, overrides: &ClientConfig) -> RepoCommands {
    detect_labelled(root, overrides, "the client's config")
}

/// [`detect`], with the overrides' source named as the client's section of the config.
pub fn detect_for_client(root: &Path, client_id: &str, overrides: &ClientConfig) -> RepoCommands {
    detect_labelled(
        root,
        overrides,
        &format!("[clients.{client_id}] in the config"),
    )
}

/// The commands found so far and where each came from.
#[derive(Default)]
struct Found {
    commands: RepoCommands,
    sources: Vec<String>,
}

impl Found {
    /// Sets `kind` to `command` unless something earlier already did.
    fn offer(&mut self, kind: &str, command: Option<String>, origin: &str) {
        let Some(command) = command else { return };
        let slot = match kind {
            "setup" => &mut self.commands.setup,
            "lint" => &mut self.commands.lint,
            _ => &mut self.commands.test,
        };
        if slot.is_none() {
            *slot = Some(command);
            self.sources.push(format!("{kind}: {origin}"));
        }
    }
}

fn detect_labelled(root: &Path, overrides: &ClientConfig, config_label: &str) -> RepoCommands {
    let mut found = Found::default();
    let configured = |c: &Option<String>| c.clone().filter(|c| !c.trim().is_empty());
    found.offer("setup", configured(&overrides.setup), config_label);
    found.offer("lint", configured(&overrides.lint), config_label);
    found.offer("test", configured(&overrides.test), config_label);
    python(root, &mut found);
    node(root, &mut found);
    make(root, &mut found);
    let mut commands = found.commands;
    commands.source = if found.sources.is_empty() {
        "nothing detected".to_string()
    } else {
        found.sources.join("; ")
    };
    commands
}

fn read(root: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(name)).ok()
}

/// A TOML or INI section header `[name]` (or a subtable `[name.…]` when `subtables`).
fn has_section(text: &str, name: &str, subtables: bool) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        let Some(inner) = line.strip_prefix('[').and_then(|l| l.split(']').next()) else {
            return false;
        };
        let inner = inner.trim();
        inner == name || (subtables && inner.starts_with(&format!("{name}.")))
    })
}

fn python(root: &Path, found: &mut Found) {
    let pyproject = read(root, "pyproject.toml").unwrap_or_default();
    let pytest_origin = if has_section(&pyproject, "tool.pytest.ini_options", false) {
        Some("pyproject.toml [tool.pytest.ini_options]")
    } else if root.join("pytest.ini").is_file() {
        Some("pytest.ini")
    } else if root.join("conftest.py").is_file() {
        Some("conftest.py")
    } else if root.join("tests/conftest.py").is_file() {
        Some("tests/conftest.py")
    } else if read(root, "setup.cfg").is_some_and(|t| has_section(&t, "tool:pytest", false)) {
        Some("setup.cfg [tool:pytest]")
    } else if read(root, "tox.ini").is_some_and(|t| has_section(&t, "pytest", false)) {
        Some("tox.ini [pytest]")
    } else {
        None
    };
    if let Some(origin) = pytest_origin {
        found.offer("test", Some("python3 -m pytest -q".into()), origin);
    }
    let ruff_origin = if has_section(&pyproject, "tool.ruff", true) {
        Some("pyproject.toml [tool.ruff]")
    } else if root.join("ruff.toml").is_file() {
        Some("ruff.toml")
    } else if root.join(".ruff.toml").is_file() {
        Some(".ruff.toml")
    } else {
        None
    };
    if let Some(origin) = ruff_origin {
        found.offer("lint", Some("ruff check .".into()), origin);
    }
    if root.join("requirements.txt").is_file() {
        found.offer(
            "setup",
            Some("python3 -m pip install -r requirements.txt".into()),
            "requirements.txt",
        );
    }
    if pytest_origin.is_none() {
        let (command, origin) = unittest_command(root);
        found.offer("test", command, &origin);
    }
}

/// unittest discovery where there are `test_*.py` or `*_test.py` files: in `tests/` first,
/// else at the top of the project.
fn unittest_command(root: &Path) -> (Option<String>, String) {
    let tests = root.join("tests");
    if let Some(pattern) = test_file_pattern(&tests, 3) {
        // With -t the start directory must be a package; without one, discovery starts in
        // tests/ and the project's modules still import from the working directory.
        let top = if tests.join("__init__.py").is_file() {
            " -t ."
        } else {
            ""
        };
        return (
            Some(format!(
                "python3 -m unittest discover -q -s tests{top}{pattern}"
            )),
            "test files under tests/".to_string(),
        );
    }
    match test_file_pattern(root, 0) {
        Some(pattern) => (
            Some(format!("python3 -m unittest discover -q{pattern}")),
            "test files at the top of the project".to_string(),
        ),
        None => (None, String::new()),
    }
}

/// The `-p` option unittest needs for the test files in `dir` (searched `depth` directories
/// down): none for `test_*.py` (its default pattern), `-p '*_test.py'` when only those exist.
fn test_file_pattern(dir: &Path, depth: usize) -> Option<&'static str> {
    let (mut prefixed, mut suffixed) = (false, false);
    scan_test_files(dir, depth, &mut prefixed, &mut suffixed);
    if prefixed {
        Some("")
    } else if suffixed {
        Some(" -p '*_test.py'")
    } else {
        None
    }
}

fn scan_test_files(dir: &Path, depth: usize, prefixed: &mut bool, suffixed: &mut bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 && !name.starts_with('.') && name != "node_modules" {
                scan_test_files(&entry.path(), depth - 1, prefixed, suffixed);
            }
        } else if name.ends_with(".py") {
            *prefixed |= name.starts_with("test_");
            *suffixed |= name.ends_with("_test.py");
        }
    }
}

fn node(root: &Path, found: &mut Found) {
    let Some(text) = read(root, "package.json") else {
        return;
    };
    let Ok(package) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let script = |name: &str| {
        package["scripts"][name]
            .as_str()
            .filter(|s| !s.trim().is_empty())
    };
    if script("test").is_some_and(|s| !s.contains(NPM_NO_TEST)) {
        found.offer(
            "test",
            Some("npm test --silent".into()),
            "package.json scripts.test",
        );
    }
    if script("lint").is_some() {
        found.offer(
            "lint",
            Some("npm run lint --silent".into()),
            "package.json scripts.lint",
        );
    }
    let has_dependencies = ["dependencies", "devDependencies"]
        .iter()
        .any(|k| package[*k].as_object().is_some_and(|d| !d.is_empty()));
    if has_dependencies && !root.join("node_modules").exists() {
        // `npm ci` installs exactly the lock file, and refuses without one.
        let (command, origin) = if root.join("package-lock.json").is_file() {
            ("npm ci", "package.json dependencies and package-lock.json")
        } else {
            ("npm install", "package.json dependencies")
        };
        found.offer("setup", Some(command.into()), origin);
    }
}

fn make(root: &Path, found: &mut Found) {
    let Some((name, text)) = ["GNUmakefile", "makefile", "Makefile"]
        .iter()
        .find_map(|n| read(root, n).map(|t| (*n, t)))
    else {
        return;
    };
    for target in ["test", "lint"] {
        if has_make_target(&text, target) {
            found.offer(
                target,
                Some(format!("make {target}")),
                &format!("{name} {target}:"),
            );
        }
    }
}

/// A rule for `target` (`test:` or `test: deps`), not a variable assignment (`test := …`).
fn has_make_target(text: &str, target: &str) -> bool {
    text.lines().any(|line| {
        let Some(rest) = line.strip_prefix(target) else {
            return false;
        };
        let rest = rest.trim_start_matches([' ', '\t']);
        rest.starts_with(':') && !rest.starts_with(":=") && !rest.starts_with("::=")
    })
}

/// The outcome of a check the repository has no command for.
pub fn none_detected(kind: &str) -> CheckOutcome {
    CheckOutcome {
        kind: kind.to_string(),
        command: String::new(),
        status: CheckStatus::Skipped,
        reason: format!("{kind}: none detected"),
        output: String::new(),
        duration_ms: 0,
    }
}

/// The outcome of a check the sandbox could not run at all (no Docker engine, no sandbox
/// image, a project too big for the scratch space): `error` is the tool's error sentence.
pub fn unavailable(kind: &str, command: &str, error: &str) -> CheckOutcome {
    CheckOutcome {
        kind: kind.to_string(),
        command: command.to_string(),
        status: CheckStatus::Skipped,
        reason: format!("the sandbox could not run it: {error}"),
        output: String::new(),
        duration_ms: 0,
    }
}

/// What one run of a check in the sandbox means: passed, failed (the project's check said
/// no), or skipped (it could not run here, and why).
pub fn classify(kind: &str, command: &str, report: &ExecReport) -> CheckOutcome {
    let output = kept_output(&report.stdout, &report.stderr);
    let (status, reason) = judge(kind, command, report, &output);
    CheckOutcome {
        kind: kind.to_string(),
        command: command.to_string(),
        status,
        reason,
        output,
        duration_ms: report.duration_ms,
    }
}

fn judge(kind: &str, command: &str, report: &ExecReport, output: &str) -> (CheckStatus, String) {
    if report.timed_out {
        return (
            CheckStatus::Failed,
            format!("{command} did not finish within its time limit and was killed"),
        );
    }
    if report.oom_killed {
        return (
            CheckStatus::Failed,
            format!("{command} ran out of memory in the sandbox"),
        );
    }
    let Some(code) = report.exit_code else {
        return (
            CheckStatus::Failed,
            format!(
                "{command} was stopped before it ended: it wrote more output than the sandbox keeps"
            ),
        );
    };
    if code == 0 {
        return (CheckStatus::Passed, String::new());
    }
    if let Some(module) = missing_module(command, output) {
        return (
            CheckStatus::Skipped,
            format!("{module} is not installed in the sandbox image"),
        );
    }
    if code == 127 {
        let program = missing_program(output).unwrap_or_else(|| first_program(command));
        return (
            CheckStatus::Skipped,
            format!("{program} is not in the sandbox image"),
        );
    }
    if kind == "setup" && offline_failure(output) {
        return (
            CheckStatus::Skipped,
            "dependencies cannot be installed with no network".to_string(),
        );
    }
    (CheckStatus::Failed, format!("{command} exited with {code}"))
}

/// The module a `python3 -m MODULE …` command runs, when Python said it is not there.
fn missing_module(command: &str, output: &str) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "-m")?;
    let module = words.get(at + 1)?;
    let top = module.split('.').next().unwrap_or(module);
    let said = [
        format!("No module named {top}"),
        format!("No module named '{top}'"),
    ];
    said.iter()
        .any(|s| output.contains(s.as_str()))
        .then(|| top.to_string())
}

/// The program a shell said it could not find: `sh: 1: npm: not found`,
/// `bash: npm: command not found`.
fn missing_program(output: &str) -> Option<String> {
    output.lines().rev().find_map(|line| {
        let before = line
            .strip_suffix(": not found")
            .or_else(|| line.strip_suffix(": command not found"))?;
        let program = before.rsplit(": ").next()?.trim();
        (!program.is_empty()).then(|| program.to_string())
    })
}

/// The program a command line starts (past any `NAME=value` settings).
fn first_program(command: &str) -> String {
    command
        .split_whitespace()
        .find(|w| !w.contains('='))
        .unwrap_or(command)
        .to_string()
}

/// pip's and npm's ways of saying they could not reach the network.
fn offline_failure(output: &str) -> bool {
    const SIGNS: &[&str] = &[
        "temporary failure in name resolution",
        "name or service not known",
        "failed to establish a new connection",
        "network is unreachable",
        "could not resolve host",
        "connection refused",
        "no matching distribution found",
        "could not find a version that satisfies",
        "getaddrinfo",
        "enotfound",
        "eai_again",
        "econnrefused",
        "enetunreach",
        "network request",
    ];
    let lower = output.to_lowercase();
    SIGNS.iter().any(|s| lower.contains(s))
}

/// The end of stdout then stderr, at most [`KEPT_OUTPUT_BYTES`], cut at a line start when
/// one is near.
fn kept_output(stdout: &str, stderr: &str) -> String {
    let mut all = String::with_capacity(stdout.len() + stderr.len() + 1);
    all.push_str(stdout);
    if !stdout.is_empty() && !stdout.ends_with('\n') && !stderr.is_empty() {
        all.push('\n');
    }
    all.push_str(stderr);
    if all.len() <= KEPT_OUTPUT_BYTES {
        return all;
    }
    let mut start = all.len() - KEPT_OUTPUT_BYTES;
    while !all.is_char_boundary(start) {
        start += 1;
    }
    let tail = &all[start..];
    match tail.find('\n') {
        Some(nl) if nl < 512 => tail[nl + 1..].to_string(),
        _ => tail.to_string(),
    }
}

#[cfg(test)]
mod tests;
