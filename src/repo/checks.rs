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
mod tests {
    use super::*;
    use std::fs;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)]) -> RepoCommands {
        let dir = project(files);
        detect(dir.path(), &ClientConfig::default())
    }

    fn report(exit: Option<i64>, stdout: &str, stderr: &str) -> ExecReport {
        ExecReport {
            stdout: stdout.into(),
            stderr: stderr.into(),
            exit_code: exit,
            passed: exit == Some(0),
            duration_ms: 42,
            timed_out: false,
            oom_killed: false,
            output_truncated: false,
            container: "abc".into(),
        }
    }

    #[test]
    fn the_config_comes_before_anything_the_files_say() {
        let dir = project(&[
            ("pyproject.toml", "[tool.pytest.ini_options]\n[tool.ruff]\n"),
            ("requirements.txt", "requests\n"),
        ]);
        let overrides = ClientConfig {
            test: Some("make check".into()),
            setup: Some("  ".into()),
            ..ClientConfig::default()
        };
        let c = detect_for_client(dir.path(), "acme", &overrides);
        assert_eq!(c.test.as_deref(), Some("make check"));
        assert_eq!(c.lint.as_deref(), Some("ruff check ."));
        assert_eq!(
            c.setup.as_deref(),
            Some("python3 -m pip install -r requirements.txt"),
            "a blank setting is no setting"
        );
        assert_eq!(
            c.source,
            "test: [clients.acme] in the config; lint: pyproject.toml [tool.ruff]; setup: requirements.txt"
        );
        let plain = detect(dir.path(), &overrides);
        assert!(
            plain.source.starts_with("test: the client's config"),
            "{}",
            plain.source
        );
    }

    #[test]
    fn pytest_is_detected_from_each_of_its_configs() {
        for files in [
            vec![(
                "pyproject.toml",
                "[project]\nname = 'x'\n\n[tool.pytest.ini_options]\naddopts = '-q'\n",
            )],
            vec![("pytest.ini", "[pytest]\n")],
            vec![("conftest.py", "")],
            vec![("tests/conftest.py", ""), ("tests/test_a.py", "")],
            vec![(
                "setup.cfg",
                "[metadata]\nname = x\n[tool:pytest]\ntestpaths = tests\n",
            )],
        ] {
            let c = found(&files);
            assert_eq!(c.test.as_deref(), Some("python3 -m pytest -q"), "{files:?}");
            assert_eq!(c.lint, None, "{files:?}");
        }
        let c = found(&[(
            "pyproject.toml",
            "[project]\nname = 'x'\n# [tool.pytest.ini_options] is not used\n",
        )]);
        assert_eq!(c.test, None, "a comment is not a section");
    }

    #[test]
    fn ruff_is_detected_from_pyproject_or_its_own_file() {
        for files in [
            vec![("pyproject.toml", "[tool.ruff]\nline-length = 100\n")],
            vec![("pyproject.toml", "[tool.ruff.lint]\nselect = ['E']\n")],
            vec![("ruff.toml", "")],
            vec![(".ruff.toml", "")],
        ] {
            let c = found(&files);
            assert_eq!(c.lint.as_deref(), Some("ruff check ."), "{files:?}");
        }
        assert_eq!(found(&[("pyproject.toml", "[tool.ruffle]\n")]).lint, None);
    }

    #[test]
    fn unittest_discovery_where_test_files_are_and_no_pytest_config() {
        let c = found(&[
            ("tests/__init__.py", ""),
            ("tests/test_cli.py", ""),
            ("cli.py", ""),
        ]);
        assert_eq!(
            c.test.as_deref(),
            Some("python3 -m unittest discover -q -s tests -t .")
        );
        assert_eq!(c.source, "test: test files under tests/");
        let c = found(&[("tests/test_cli.py", "")]);
        assert_eq!(
            c.test.as_deref(),
            Some("python3 -m unittest discover -q -s tests"),
            "tests/ without __init__.py is not importable as a package"
        );
        let c = found(&[("test_cli.py", ""), ("cli.py", "")]);
        assert_eq!(c.test.as_deref(), Some("python3 -m unittest discover -q"));
        let c = found(&[("cli_test.py", "")]);
        assert_eq!(
            c.test.as_deref(),
            Some("python3 -m unittest discover -q -p '*_test.py'")
        );
        let c = found(&[("src/pkg/test_deep.py", "")]);
        assert_eq!(c.test, None, "only tests/ and the top are searched");
    }

    #[test]
    fn node_scripts_and_install() {
        let c = found(&[
            (
                "package.json",
                r#"{"scripts": {"test": "node --test", "lint": "eslint ."}, "devDependencies": {"eslint": "9"}}"#,
            ),
            ("package-lock.json", "{}"),
        ]);
        assert_eq!(c.test.as_deref(), Some("npm test --silent"));
        assert_eq!(c.lint.as_deref(), Some("npm run lint --silent"));
        assert_eq!(c.setup.as_deref(), Some("npm ci"));
        let c = found(&[
            (
                "package.json",
                r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}, "dependencies": {"x": "1"}}"#,
            ),
            ("node_modules/x/index.js", ""),
        ]);
        assert_eq!(c.test, None, "npm's placeholder is not a test");
        assert_eq!(c.setup, None, "dependencies already installed");
        assert_eq!(c.source, "nothing detected");
        let c = found(&[("package.json", r#"{"dependencies": {"x": "1"}}"#)]);
        assert_eq!(c.setup.as_deref(), Some("npm install"), "no lock file");
        assert_eq!(
            found(&[("package.json", "not json")]),
            RepoCommands {
                source: "nothing detected".into(),
                ..RepoCommands::default()
            }
        );
    }

    #[test]
    fn make_targets() {
        let c = found(&[(
            "Makefile",
            "VAR := 1\n.PHONY: test lint\ntest: build\n\tpython3 -m unittest\nlint:\n\ttrue\n",
        )]);
        assert_eq!(c.test.as_deref(), Some("make test"));
        assert_eq!(c.lint.as_deref(), Some("make lint"));
        assert_eq!(c.source, "test: Makefile test:; lint: Makefile lint:");
        let c = found(&[("Makefile", "test := value\ntesting:\n\ttrue\n")]);
        assert_eq!((c.test, c.lint), (None, None));
    }

    #[test]
    fn earlier_rules_win_over_later_ones() {
        let c = found(&[
            ("pytest.ini", "[pytest]\n"),
            (
                "package.json",
                r#"{"scripts": {"test": "jest", "lint": "eslint ."}}"#,
            ),
            ("Makefile", "test:\n\ttrue\nlint:\n\ttrue\n"),
        ]);
        assert_eq!(c.test.as_deref(), Some("python3 -m pytest -q"));
        assert_eq!(c.lint.as_deref(), Some("npm run lint --silent"));
        assert_eq!(c.setup, None);
        assert_eq!(
            c.source,
            "test: pytest.ini; lint: package.json scripts.lint"
        );
    }

    #[test]
    fn nothing_found_is_none() {
        let c = found(&[("README.md", "# hi\n"), ("main.py", "print(1)\n")]);
        assert_eq!((c.setup, c.lint, c.test), (None, None, None));
        assert_eq!(c.source, "nothing detected");
    }

    #[test]
    fn exit_zero_passes_and_anything_else_fails_with_the_output() {
        let ok = classify(
            "test",
            "python3 -m unittest discover -q",
            &report(Some(0), "", "OK\n"),
        );
        assert_eq!(
            (ok.status, ok.output.as_str(), ok.duration_ms),
            (CheckStatus::Passed, "OK\n", 42)
        );
        let failed = classify(
            "test",
            "python3 -m unittest discover -q",
            &report(
                Some(1),
                "",
                "FAIL: test_add (tests.test_calc.CalcTest)\nFAILED (failures=1)\n",
            ),
        );
        assert_eq!(failed.status, CheckStatus::Failed);
        assert_eq!(
            failed.reason,
            "python3 -m unittest discover -q exited with 1"
        );
        assert!(
            failed.output.contains("FAIL: test_add"),
            "{}",
            failed.output
        );
        let timed = classify(
            "test",
            "make test",
            &ExecReport {
                timed_out: true,
                exit_code: None,
                ..report(None, "", "")
            },
        );
        assert_eq!(timed.status, CheckStatus::Failed);
        assert!(timed.reason.contains("did not finish"), "{}", timed.reason);
        let cut = classify(
            "test",
            "make test",
            &ExecReport {
                output_truncated: true,
                ..report(None, "x", "")
            },
        );
        assert_eq!(cut.status, CheckStatus::Failed);
        let oom = classify(
            "test",
            "make test",
            &ExecReport {
                oom_killed: true,
                ..report(Some(137), "", "")
            },
        );
        assert!(oom.reason.contains("out of memory"), "{}", oom.reason);
    }

    #[test]
    fn a_missing_tool_is_skipped_not_failed() {
        let pytest = classify(
            "test",
            "python3 -m pytest -q",
            &report(Some(1), "", "/usr/bin/python3: No module named pytest\n"),
        );
        assert_eq!(pytest.status, CheckStatus::Skipped);
        assert_eq!(
            pytest.reason,
            "pytest is not installed in the sandbox image"
        );
        let npm = classify(
            "test",
            "npm test --silent",
            &report(Some(127), "", "sh: 1: npm: not found\n"),
        );
        assert_eq!(
            (npm.status, npm.reason.as_str()),
            (CheckStatus::Skipped, "npm is not in the sandbox image")
        );
        let bash = classify("lint", "CI=1 ruff check .", &report(Some(127), "", ""));
        assert_eq!(bash.reason, "ruff is not in the sandbox image");
        let named = classify(
            "test",
            "make test",
            &report(Some(127), "", "bash: make: command not found\n"),
        );
        assert_eq!(named.reason, "make is not in the sandbox image");
        // A test that fails importing some other module is the project's failure.
        let other = classify(
            "test",
            "python3 -m unittest",
            &report(
                Some(1),
                "",
                "ModuleNotFoundError: No module named 'requests'\n",
            ),
        );
        assert_eq!(other.status, CheckStatus::Failed);
    }

    #[test]
    fn setup_without_network_is_skipped() {
        let pip = classify(
            "setup",
            "python3 -m pip install -r requirements.txt",
            &report(
                Some(1),
                "",
                "WARNING: Retrying ... NewConnectionError: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution\nERROR: No matching distribution found for requests\n",
            ),
        );
        assert_eq!(
            (pip.status, pip.reason.as_str()),
            (
                CheckStatus::Skipped,
                "dependencies cannot be installed with no network"
            )
        );
        let npm = classify(
            "setup",
            "npm ci",
            &report(
                Some(1),
                "",
                "npm error code EAI_AGAIN\nnpm error request to https://registry.npmjs.org/x failed\n",
            ),
        );
        assert_eq!(npm.status, CheckStatus::Skipped);
        let test = classify(
            "test",
            "npm test",
            &report(Some(1), "", "Error: getaddrinfo ENOTFOUND example.com\n"),
        );
        assert_eq!(
            test.status,
            CheckStatus::Failed,
            "only setup is excused for the network"
        );
        let broken = classify(
            "setup",
            "python3 -m pip install -r requirements.txt",
            &report(Some(1), "", "ERROR: Invalid requirement: '=='\n"),
        );
        assert_eq!(broken.status, CheckStatus::Failed);
    }

    #[test]
    fn kept_output_is_the_tail_of_stdout_then_stderr() {
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let out = classify("test", "t", &report(Some(1), &long, "the end\n"));
        assert!(
            out.output.len() <= KEPT_OUTPUT_BYTES,
            "{}",
            out.output.len()
        );
        assert!(out.output.ends_with("line 1999\nthe end\n"));
        assert!(out.output.starts_with("line "), "cut at a line start");
        let joined = classify("test", "t", &report(Some(1), "out", "err"));
        assert_eq!(joined.output, "out\nerr");
        let wide = "é".repeat(KEPT_OUTPUT_BYTES);
        let out = classify("test", "t", &report(Some(1), &wide, ""));
        assert!(out.output.len() <= KEPT_OUTPUT_BYTES && out.output.starts_with('é'));
    }
}
