//! Client repositories for tests: bare git repositories (default branch `main`, one commit)
//! built with the git CLI and no user or system git config.

use std::path::{Path, PathBuf};

const INIT_PY: &str = r#""""greet: says hello from the command line."""

__version__ = "0.1.0"
"#;

const CLI_PY: &str = r#""""The greet command: prints a greeting for a name."""

import argparse
import sys


def greet(name):
    """The greeting for `name`; a blank name greets the world."""
    name = name.strip()
    if not name:
        name = "world"
    return f"Hello, {name}!"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="greet", description="Print a greeting.")
    parser.add_argument("name", nargs="?", default="world", help="who to greet")
    parser.add_argument("--shout", action="store_true", help="print in capitals")
    args = parser.parse_args(argv)
    text = greet(args.name)
    if args.shout:
        text = text.upper()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
"#;

const TEST_PY_HEAD: &str = r#"import contextlib
import io
import unittest

from greet.cli import greet, main


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greet("Ada"), "Hello, Ada!")

    def test_blank_name_greets_the_world(self):
        self.assertEqual(greet("  "), "Hello, world!")

    def test_main_prints_and_shouts(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["Ada", "--shout"])
        self.assertEqual(code, 0)
        self.assertEqual(out.getvalue(), "HELLO, ADA!\n")
"#;

/// A test the base commit fails: names are to be capitalised, and `greet` does not yet.
const TEST_PY_BROKEN: &str = r#"
    def test_name_is_capitalised(self):
        self.assertEqual(greet("ada"), "Hello, Ada!")
"#;

const TEST_PY_TAIL: &str = r#"

if __name__ == "__main__":
    unittest.main()
"#;

const README: &str = "# greet\n\nPrints a greeting.\n\n    python3 -m greet.cli Ada --shout\n\nTests: `python3 -m unittest discover -s tests -t .`\n";

const PYPROJECT: &str = r#"[project]
name = "greet"
version = "0.1.0"
description = "Prints a greeting"
requires-python = ">=3.9"

[project.scripts]
greet = "greet.cli:main"
"#;

/// `dir/site.git`: a bare repository with one commit of a small Python CLI project
/// (`greet/`, `tests/test_cli.py`, `README.md`, `pyproject.toml`). Its tests pass with
/// `python3 -m unittest discover -q -s tests -t .`; with `broken`, one of them fails.
pub fn python_project(dir: &Path, broken: bool) -> PathBuf {
    let mut test_py = TEST_PY_HEAD.to_string();
    if broken {
        test_py.push_str(TEST_PY_BROKEN);
    }
    test_py.push_str(TEST_PY_TAIL);
    let files: Vec<(String, String)> = vec![
        ("greet/__init__.py".into(), INIT_PY.into()),
        ("greet/cli.py".into(), CLI_PY.into()),
        ("tests/__init__.py".into(), String::new()),
        ("tests/test_cli.py".into(), test_py),
        ("README.md".into(), README.into()),
        ("pyproject.toml".into(), PYPROJECT.into()),
        (".gitignore".into(), "__pycache__/\n*.pyc\n".into()),
    ];
    bare_with_files(
        &dir.join("site.git"),
        &files,
        "Greet: a CLI that says hello",
    )
}

/// `dir/many.git`: a bare repository with one commit of `n` small text files spread over
/// nested folders (`src/dNN/eNN/file_N.txt`), for timing work on larger trees.
pub fn many_files(dir: &Path, n: usize) -> PathBuf {
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("src/d{:02}/e{:02}/file_{i}.txt", i % 16, (i / 16) % 16),
                format!("file {i}\nline two of file {i}\n"),
            )
        })
        .collect();
    bare_with_files(&dir.join("many.git"), &files, &format!("{n} files"))
}

/// Creates the bare repository `bare` holding `files` in one commit on `main`; the files
/// are written to a scratch work tree beside it that is removed afterwards.
pub fn bare_with_files(bare: &Path, files: &[(String, String)], message: &str) -> PathBuf {
    assert!(
        !bare.exists(),
        "{} exists already; give each fixture its own directory",
        bare.display()
    );
    let scratch = tempfile::tempdir().expect("a scratch directory");
    for (path, text) in files {
        let full = scratch.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create a fixture folder");
        }
        std::fs::write(&full, text).expect("write a fixture file");
    }
    run_git(
        None,
        ["init", "--quiet", "--bare", "--initial-branch=main"],
        Some(bare),
    );
    let work_tree = scratch.path();
    let in_work = |rest: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--git-dir".into(),
            bare.into(),
            "--work-tree".into(),
            work_tree.into(),
        ];
        args.extend(rest.iter().map(std::ffi::OsString::from));
        args
    };
    run_git(None, in_work(&["add", "--all"]), None);
    run_git(None, in_work(&["commit", "--quiet", "-m", message]), None);
    bare.to_path_buf()
}

/// Runs git with a fixed author and no user or system config; panics with git's words if
/// it fails. `target` is appended as the last argument when given.
pub fn run_git<I, S>(dir: Option<&Path>, args: I, target: Option<&Path>) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let mut cmd = std::process::Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args([
        "-c",
        "user.name=Fixture Author",
        "-c",
        "user.email=fixture@example.com",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "init.defaultBranch=main",
    ])
    .args(&args);
    if let Some(t) = target {
        cmd.arg(t);
    }
    let out = cmd
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", "2026-01-05T10:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-05T10:00:00Z")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
