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

#[test]
fn what_could_not_run_is_skipped_with_the_reason() {
    let none = none_detected("test");
    assert_eq!(
        (none.status, none.reason.as_str(), none.command.as_str()),
        (CheckStatus::Skipped, "test: none detected", "")
    );
    let down = unavailable("lint", "ruff check .", "no Docker engine answers");
    assert_eq!(down.status, CheckStatus::Skipped);
    assert_eq!(
        down.reason,
        "the sandbox could not run it: no Docker engine answers"
    );
}
