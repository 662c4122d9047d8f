//! How risky a change is, from what it touches (seed 001's risk gate): size, sensitive
//! paths, weakened tests, new network and shell calls, and hard-coded secrets. Every
//! contribution is one reason line with its points, so the operator sees why a score is
//! high. Pure: it reads only the diff summary.
//!
//! Calibration: a secret alone lands near the critical line and a secret in an auth module
//! crosses it; a one-line docs change scores next to nothing; a typical feature with its
//! test stays far below the line.

use super::secrets_scan::{self, PatchLine};
use crate::repo::{DiffSummary, FileChange, RiskReport};

/// Points for a hard-coded secret (any number of them): with an auth path it passes
/// [`RiskReport::CRITICAL_ABOVE`].
const SECRET_POINTS: u32 = 50;
const TRUNCATED_POINTS: u32 = 10;
const DELETED_TESTS_POINTS: u32 = 15;
const WEAKENED_TESTS_POINTS: u32 = 10;
const NETWORK_POINTS: u32 = 10;
const SHELL_POINTS: u32 = 15;
/// How many paths or places a reason line names before it says "and N more".
const NAMED: usize = 3;

/// A kind of sensitive path and the points for touching it.
struct Sensitive {
    what: &'static str,
    points: u32,
    matches: fn(&str) -> bool,
}

const SENSITIVE: &[Sensitive] = &[
    Sensitive {
        what: "auth",
        points: 30,
        matches: is_auth,
    },
    Sensitive {
        what: "payments",
        points: 30,
        matches: is_payments,
    },
    Sensitive {
        what: "database migrations",
        points: 20,
        matches: is_migration,
    },
    Sensitive {
        what: "CI config",
        points: 20,
        matches: is_ci,
    },
    Sensitive {
        what: "container build",
        points: 15,
        matches: is_container,
    },
    Sensitive {
        what: "dependencies",
        points: 10,
        matches: is_dependency_manifest,
    },
];

/// Added code that reaches the network.
const NETWORK_CALLS: &[&str] = &[
    "requests.",
    "httpx.",
    "urllib",
    "aiohttp",
    "http.client",
    "fetch(",
    "axios",
    "XMLHttpRequest",
    "socket.",
    "import socket",
    "net/http",
    "reqwest::",
];

/// Added code that runs a shell command or evaluates a string.
const SHELL_CALLS: &[&str] = &[
    "subprocess",
    "os.system",
    "os.popen",
    "exec(",
    "eval(",
    "execSync",
    "child_process",
    "shell=True",
    "Command::new",
];

/// The risk of `diff`, 0–100, with one reason per contribution and the secrets found.
pub fn assess(diff: &DiffSummary) -> RiskReport {
    let mut reasons = Vec::new();
    let mut score = 0u32;
    let mut add = |points: u32, reason: String| {
        if points > 0 {
            score += points;
            reasons.push(format!("{reason} (+{points})"));
        }
    };

    let changed = diff.lines_added() + diff.lines_removed();
    add(
        lines_points(changed),
        format!(
            "size: {changed} lines changed (+{} −{})",
            diff.lines_added(),
            diff.lines_removed()
        ),
    );
    let files = diff.files.len();
    add(files_points(files), format!("size: {files} files touched"));
    if diff.patch_truncated {
        add(
            TRUNCATED_POINTS,
            "the diff was too long to scan whole; only its start was checked".to_string(),
        );
    }

    for kind in SENSITIVE {
        let hits: Vec<&str> = diff
            .files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| (kind.matches)(&p.to_ascii_lowercase()))
            .collect();
        if !hits.is_empty() {
            add(
                kind.points,
                format!("touches {}: {}", kind.what, named(&hits)),
            );
        }
    }

    let deleted_tests: Vec<&str> = diff
        .files
        .iter()
        .filter(|f| f.status == "deleted" && is_test_path(&f.path))
        .map(|f| f.path.as_str())
        .collect();
    if !deleted_tests.is_empty() {
        add(
            DELETED_TESTS_POINTS,
            format!(
                "deletes test files (coverage may drop): {}",
                named(&deleted_tests)
            ),
        );
    }

    let lines = secrets_scan::patch_lines(&diff.patch);
    let test_lines = |added: bool| {
        lines
            .iter()
            .filter(|l| l.added == added && !is_deleted(diff, l.path) && is_test_line(l.text))
            .count()
    };
    let (tests_added, tests_removed) = (test_lines(true), test_lines(false));
    if tests_removed > tests_added {
        add(
            WEAKENED_TESTS_POINTS,
            format!(
                "removes {} test functions or assertions (coverage may drop)",
                tests_removed - tests_added
            ),
        );
    }

    let network = calls_added(&lines, NETWORK_CALLS);
    if !network.is_empty() {
        add(
            NETWORK_POINTS,
            format!("adds network calls: {}", named(&network)),
        );
    }
    let shell = calls_added(&lines, SHELL_CALLS);
    if !shell.is_empty() {
        add(
            SHELL_POINTS,
            format!("adds shell or eval calls: {}", named(&shell)),
        );
    }

    let secrets = secrets_scan::scan(&diff.patch);
    if !secrets.is_empty() {
        let places: Vec<String> = secrets
            .iter()
            .map(|s| format!("{} in {}:{}", s.kind, s.path, s.line))
            .collect();
        add(
            SECRET_POINTS,
            format!("hard-coded secrets: {}", named(&places)),
        );
    }

    RiskReport {
        score: score.min(100) as u8,
        reasons,
        secrets,
    }
}

fn lines_points(lines: u32) -> u32 {
    match lines {
        0..=10 => 0,
        11..=50 => 5,
        51..=200 => 10,
        201..=500 => 20,
        _ => 30,
    }
}

fn files_points(files: usize) -> u32 {
    match files {
        0..=3 => 0,
        4..=10 => 5,
        11..=25 => 10,
        _ => 15,
    }
}

/// The first few of `items`, then how many more.
fn named<S: AsRef<str>>(items: &[S]) -> String {
    let mut shown: Vec<&str> = items.iter().take(NAMED).map(|s| s.as_ref()).collect();
    let more = items.len().saturating_sub(NAMED);
    let more_text = format!("and {more} more");
    if more > 0 {
        shown.push(&more_text);
    }
    shown.join(", ")
}

/// The words of a lowercase path: `src/auth/LoginView.py` → src, auth, loginview, py.
fn words(path: &str) -> impl Iterator<Item = &str> {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_auth(path: &str) -> bool {
    words(path).any(|w| {
        // `authors`, `author.md` are about people, not authentication.
        (w.starts_with("auth") && !w.starts_with("author"))
            || w.starts_with("authoriz")
            || [
                "login",
                "logout",
                "session",
                "password",
                "passwd",
                "crypto",
                "token",
                "oauth",
                "jwt",
                "credential",
                "signin",
                "signup",
                "permission",
            ]
            .iter()
            .any(|k| w.starts_with(k))
    })
}

fn is_payments(path: &str) -> bool {
    words(path).any(|w| {
        [
            "payment",
            "billing",
            "stripe",
            "checkout",
            "invoice",
            "paypal",
            "subscription",
        ]
        .iter()
        .any(|k| w.starts_with(k))
    })
}

fn is_migration(path: &str) -> bool {
    words(path).any(|w| w.starts_with("migration") || w == "migrate" || w == "alembic")
        || path.ends_with(".sql")
}

fn is_ci(path: &str) -> bool {
    path.starts_with(".github/workflows/")
        || path.starts_with(".github/actions/")
        || path.starts_with(".circleci/")
        || path.starts_with(".buildkite/")
        || matches!(
            file_name(path),
            ".gitlab-ci.yml" | ".travis.yml" | "jenkinsfile" | "azure-pipelines.yml"
        )
}

fn is_container(path: &str) -> bool {
    let name = file_name(path);
    name.starts_with("dockerfile")
        || name.ends_with(".dockerfile")
        || name.starts_with("docker-compose")
        || matches!(name, "compose.yml" | "compose.yaml" | ".dockerignore")
}

fn is_dependency_manifest(path: &str) -> bool {
    let name = file_name(path);
    (name.starts_with("requirements") && name.ends_with(".txt"))
        || matches!(
            name,
            "package.json"
                | "package-lock.json"
                | "npm-shrinkwrap.json"
                | "yarn.lock"
                | "pnpm-lock.yaml"
                | "pyproject.toml"
                | "poetry.lock"
                | "uv.lock"
                | "pipfile"
                | "pipfile.lock"
                | "setup.py"
                | "setup.cfg"
                | "cargo.toml"
                | "cargo.lock"
                | "go.mod"
                | "go.sum"
                | "gemfile"
                | "gemfile.lock"
                | "composer.json"
                | "composer.lock"
                | "pom.xml"
                | "build.gradle"
                | "build.gradle.kts"
        )
}

/// A test file by the usual conventions of Python, JS/TS, Go, Rust and Ruby.
fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let name = file_name(&lower);
    lower
        .split('/')
        .any(|d| matches!(d, "test" | "tests" | "__tests__" | "spec"))
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.contains("_spec.")
}

/// A line that declares a test or asserts something.
fn is_test_line(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("def test")
        || t.starts_with("async def test")
        || t.starts_with("#[test]")
        || t.starts_with("#[tokio::test")
        || t.starts_with("it(")
        || t.starts_with("test(")
        || t.starts_with("func Test")
        || t.starts_with("assert")
        || t.starts_with("self.assert")
        || t.starts_with("expect(")
}

fn is_deleted(diff: &DiffSummary, path: &str) -> bool {
    // A deleted test file already counts once as a whole; its lines are not counted again.
    diff.files
        .iter()
        .any(|f: &FileChange| f.path == path && f.status == "deleted")
}

/// `path:line (call)` for each added code line that makes one of `calls`. Docs and
/// comments are prose: a README that mentions `requests.get` runs nothing.
fn calls_added(lines: &[PatchLine<'_>], calls: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.added && !is_prose(l.path) && !is_comment(l.text))
        .filter_map(|l| {
            calls
                .iter()
                .find(|c| l.text.contains(*c))
                .map(|c| format!("{}:{} {}", l.path, l.line, c.trim_end_matches(['.', '('])))
        })
        .collect()
}

fn is_prose(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".md", ".rst", ".txt", ".adoc"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        || lower.starts_with("docs/")
}

fn is_comment(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('#') || t.starts_with("//") || t.starts_with('*') || t.starts_with("/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file's change: its status, the lines it adds and the lines it removes.
    struct Change<'a> {
        path: &'a str,
        status: &'a str,
        added: Vec<String>,
        removed: Vec<String>,
    }

    fn change<'a>(path: &'a str, added: &[&str], removed: &[&str]) -> Change<'a> {
        Change {
            path,
            status: if removed.is_empty() {
                "added"
            } else {
                "modified"
            },
            added: added.iter().map(|s| s.to_string()).collect(),
            removed: removed.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A diff summary whose patch is what `git diff` would print for `changes`.
    fn diff(changes: Vec<Change<'_>>) -> DiffSummary {
        let mut patch = String::new();
        let mut files = Vec::new();
        for c in &changes {
            let (old, new) = match c.status {
                "added" => ("/dev/null".to_string(), format!("b/{}", c.path)),
                "deleted" => (format!("a/{}", c.path), "/dev/null".to_string()),
                _ => (format!("a/{}", c.path), format!("b/{}", c.path)),
            };
            patch.push_str(&format!(
                "diff --git a/{p} b/{p}\n--- {old}\n+++ {new}\n@@ -1,{} +1,{} @@\n",
                c.removed.len(),
                c.added.len(),
                p = c.path
            ));
            for l in &c.removed {
                patch.push_str(&format!("-{l}\n"));
            }
            for l in &c.added {
                patch.push_str(&format!("+{l}\n"));
            }
            files.push(FileChange {
                path: c.path.to_string(),
                status: c.status.to_string(),
                added: c.added.len() as u32,
                removed: c.removed.len() as u32,
                binary: false,
            });
        }
        DiffSummary {
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            files,
            patch,
            patch_truncated: false,
        }
    }

    fn lines(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i} = {i}")).collect()
    }

    fn has_reason(report: &RiskReport, start: &str) -> bool {
        report.reasons.iter().any(|r| r.starts_with(start))
    }

    #[test]
    fn an_auth_change_with_a_hard_coded_key_needs_critical_review() {
        let key = format!("AKIA{}", "Q3RZ7WJ2KD5LMN4P");
        let report = assess(&diff(vec![change(
            "app/auth.py",
            &[
                "import hmac",
                &format!("AWS_ACCESS_KEY_ID = \"{key}\""),
                "def check(user):",
                "    return hmac.compare_digest(user.sig, SIG)",
            ],
            &["def check(user):"],
        )]));
        assert!(report.score > 70, "{report:?}");
        assert!(report.needs_critical_review() && report.blocks_approval());
        assert!(has_reason(&report, "touches auth: app/auth.py (+30)"));
        assert!(has_reason(
            &report,
            "hard-coded secrets: aws access key in app/auth.py:2"
        ));
        assert!(report.reasons.iter().all(|r| !r.contains(&key)));
    }

    #[test]
    fn a_one_line_readme_change_scores_low() {
        let report = assess(&diff(vec![change(
            "README.md",
            &["Run `make test` before a release."],
            &["Run the tests before a release."],
        )]));
        assert!(report.score <= 10, "{report:?}");
        assert!(report.secrets.is_empty());
    }

    #[test]
    fn a_typical_feature_with_its_test_scores_well_under_the_line() {
        let mut code = vec!["def slugify(title):".to_string()];
        code.extend(lines("    part", 19));
        let mut test = vec![
            "def test_slugify():".to_string(),
            "    assert slugify('A B') == 'a-b'".to_string(),
        ];
        test.extend(lines("    case", 8));
        let report = assess(&diff(vec![
            Change {
                path: "src/slug.py",
                status: "added",
                added: code,
                removed: vec![],
            },
            Change {
                path: "tests/test_slug.py",
                status: "added",
                added: test,
                removed: vec![],
            },
        ]));
        assert!(report.score <= 20, "{report:?}");
        assert!(!report.needs_critical_review());
    }

    #[test]
    fn size_bands_count_lines_and_files() {
        let small = assess(&diff(vec![change("src/a.py", &["x = 1"], &[])]));
        assert_eq!(small.score, 0);
        let files: Vec<String> = (0..12).map(|i| format!("src/m{i}.py")).collect();
        let many = assess(&diff(
            files
                .iter()
                .map(|p| Change {
                    path: p,
                    status: "added",
                    added: lines("v", 30),
                    removed: vec![],
                })
                .collect(),
        ));
        // 360 lines (+20) in 12 files (+10).
        assert_eq!(many.score, 30, "{many:?}");
        assert!(has_reason(&many, "size: 360 lines changed (+360 −0) (+20)"));
        assert!(has_reason(&many, "size: 12 files touched (+10)"));
        let mut truncated = diff(vec![change("src/a.py", &["x = 1"], &[])]);
        truncated.patch_truncated = true;
        assert_eq!(assess(&truncated).score, TRUNCATED_POINTS as u8);
    }

    #[test]
    fn each_sensitive_path_kind_is_named_once_with_its_points() {
        let cases = [
            ("src/login/views.py", "touches auth", 30),
            ("lib/crypto.rs", "touches auth", 30),
            ("billing/stripe_hooks.js", "touches payments", 30),
            (
                "db/migrations/0004_add_index.py",
                "touches database migrations",
                20,
            ),
            ("schema/002.sql", "touches database migrations", 20),
            (".github/workflows/ci.yml", "touches CI config", 20),
            (".gitlab-ci.yml", "touches CI config", 20),
            ("docker/Dockerfile.dev", "touches container build", 15),
            ("requirements-dev.txt", "touches dependencies", 10),
            ("package.json", "touches dependencies", 10),
            ("Cargo.lock", "touches dependencies", 10),
            ("go.mod", "touches dependencies", 10),
        ];
        for (path, reason, points) in cases {
            let report = assess(&diff(vec![change(path, &["a = 1"], &[])]));
            assert_eq!(report.score, points, "{path}: {report:?}");
            assert_eq!(
                report.reasons,
                vec![format!("{reason}: {path} (+{points})")]
            );
        }
        for ordinary in ["AUTHORS.md", "src/author_list.py", "src/view.py"] {
            assert_eq!(assess(&diff(vec![change(ordinary, &["a"], &[])])).score, 0);
        }
        let two = assess(&diff(vec![
            change("auth/a.py", &["a"], &[]),
            change("auth/b.py", &["b"], &[]),
        ]));
        assert_eq!(
            two.reasons,
            vec!["touches auth: auth/a.py, auth/b.py (+30)"]
        );
    }

    #[test]
    fn deleted_test_files_and_removed_assertions_raise_the_score() {
        let deleted = assess(&diff(vec![Change {
            path: "tests/test_api.py",
            status: "deleted",
            added: vec![],
            removed: vec!["def test_get():".into(), "    assert get() == 1".into()],
        }]));
        assert_eq!(deleted.score, DELETED_TESTS_POINTS as u8, "{deleted:?}");
        assert!(has_reason(
            &deleted,
            "deletes test files (coverage may drop): tests/test_api.py"
        ));

        let weakened = assess(&diff(vec![change(
            "tests/test_api.py",
            &["    pass"],
            &["    assert get() == 1", "    assert get(2) == 2"],
        )]));
        assert_eq!(weakened.score, WEAKENED_TESTS_POINTS as u8, "{weakened:?}");
        assert!(has_reason(
            &weakened,
            "removes 2 test functions or assertions"
        ));

        // Replacing an assertion with another is not weakening.
        let rewritten = assess(&diff(vec![change(
            "tests/test_api.py",
            &["    assert get() == 2"],
            &["    assert get() == 1"],
        )]));
        assert_eq!(rewritten.score, 0);
    }

    #[test]
    fn new_network_and_shell_calls_in_code_raise_the_score_and_prose_does_not() {
        let network = assess(&diff(vec![change(
            "src/client.py",
            &["import requests", "r = requests.get(URL)"],
            &[],
        )]));
        assert_eq!(network.score, NETWORK_POINTS as u8, "{network:?}");
        assert!(has_reason(
            &network,
            "adds network calls: src/client.py:2 requests (+10)"
        ));

        let shell = assess(&diff(vec![change(
            "src/run.py",
            &["subprocess.run(cmd, shell=True)", "value = eval(text)"],
            &[],
        )]));
        assert_eq!(shell.score, SHELL_POINTS as u8, "{shell:?}");
        assert!(has_reason(
            &shell,
            "adds shell or eval calls: src/run.py:1 subprocess, src/run.py:2 eval"
        ));

        let prose = assess(&diff(vec![
            change(
                "docs/usage.md",
                &["Call `requests.get(url)` or `eval(x)`."],
                &[],
            ),
            change("src/a.py", &["# we never call subprocess here"], &[]),
        ]));
        assert_eq!(prose.score, 0, "{prose:?}");

        // A call the change removes lowers nothing and raises nothing.
        let removed = assess(&diff(vec![change(
            "src/a.py",
            &["x = 1"],
            &["os.system('ls')"],
        )]));
        assert_eq!(removed.score, 0);
    }

    #[test]
    fn a_secret_alone_scores_high_and_the_score_is_clamped() {
        let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
        let alone = assess(&diff(vec![change(
            "src/settings.py",
            &[&format!("GH = \"{token}\"")],
            &[],
        )]));
        assert_eq!(alone.score, SECRET_POINTS as u8);
        assert_eq!(alone.secrets.len(), 1);

        let mut everything: Vec<Change<'_>> = [
            "auth/session.py",
            "billing/pay.py",
            "migrations/1.sql",
            ".github/workflows/x.yml",
            "Dockerfile",
            "package.json",
        ]
        .iter()
        .map(|p| change(p, &["a"], &[]))
        .collect();
        everything.push(change("src/k.py", &[&format!("T = \"{token}\"")], &[]));
        assert_eq!(assess(&diff(everything)).score, 100);
    }
}
