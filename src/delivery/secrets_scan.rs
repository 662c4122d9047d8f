//! The secret scan that runs before the approval gate: over the lines a change *adds*
//! (a secret the change removes is not the change's doing), each finding named by file and
//! line, and kept only in masked form so the scan itself never stores what it found.
//!
//! Two kinds of rule: token formats that are secrets wherever they appear (AWS access keys,
//! GitHub, Slack, Stripe and model-provider keys, private key blocks, JWTs), and long
//! random-looking strings assigned to a name that says key, secret, token or password.

use crate::repo::SecretFinding;
use regex::Regex;
use std::sync::LazyLock;

/// One added or removed line of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchLine<'a> {
    /// The file's path after the change (before it, for a deleted file).
    pub path: &'a str,
    /// The line number in the new file (added lines) or the old file (removed lines).
    pub line: u32,
    pub text: &'a str,
    pub added: bool,
}

/// The added and removed lines of `patch` (`git diff` output), numbered from the hunk
/// headers. Context lines only advance the counters; headers are told apart from content
/// by the hunk's line counts, so an added line that starts with `++` is still content.
pub fn patch_lines(patch: &str) -> Vec<PatchLine<'_>> {
    let mut out = Vec::new();
    let mut old_path: &str = "";
    let mut path: &str = "";
    let (mut old_line, mut new_line) = (0u32, 0u32);
    let (mut old_left, mut new_left) = (0u32, 0u32);
    for raw in patch.lines() {
        if old_left == 0 && new_left == 0 {
            if let Some(rest) = raw.strip_prefix("--- ") {
                old_path = strip_side(rest);
                path = old_path;
            } else if let Some(rest) = raw.strip_prefix("+++ ") {
                let new_path = strip_side(rest);
                path = if new_path == "/dev/null" {
                    old_path
                } else {
                    new_path
                };
            } else if let Some(header) = raw.strip_prefix("@@ ")
                && let Some((old, new)) = hunk_ranges(header)
            {
                (old_line, old_left) = old;
                (new_line, new_left) = new;
            }
            continue;
        }
        match raw.as_bytes().first() {
            Some(b'+') => {
                out.push(PatchLine {
                    path,
                    line: new_line,
                    text: &raw[1..],
                    added: true,
                });
                new_line += 1;
                new_left = new_left.saturating_sub(1);
            }
            Some(b'-') => {
                out.push(PatchLine {
                    path,
                    line: old_line,
                    text: &raw[1..],
                    added: false,
                });
                old_line += 1;
                old_left = old_left.saturating_sub(1);
            }
            // "\ No newline at end of file" belongs to the line before it.
            Some(b'\\') => {}
            _ => {
                old_line += 1;
                new_line += 1;
                old_left = old_left.saturating_sub(1);
                new_left = new_left.saturating_sub(1);
            }
        }
    }
    out
}

/// `a/src/x.py` → `src/x.py`; `/dev/null` stays; a tab-separated timestamp is dropped.
fn strip_side(rest: &str) -> &str {
    let rest = rest.split('\t').next().unwrap_or(rest).trim_end();
    rest.strip_prefix("a/")
        .or_else(|| rest.strip_prefix("b/"))
        .unwrap_or(rest)
}

/// `-12,3 +14,5 @@ fn x()` → ((12, 3), (14, 5)); a missing count means 1.
fn hunk_ranges(header: &str) -> Option<((u32, u32), (u32, u32))> {
    let mut parts = header.split_whitespace();
    let old = parse_range(parts.next()?.strip_prefix('-')?)?;
    let new = parse_range(parts.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

fn parse_range(range: &str) -> Option<(u32, u32)> {
    match range.split_once(',') {
        Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
        None => Some((range.parse().ok()?, 1)),
    }
}

/// Token formats that are secrets wherever they appear. Order matters: a span taken by an
/// earlier rule is not reported again by a later one (`sk-ant-…` is not also an `sk-…`).
const TOKEN_RULES: &[(&str, &str)] = &[
    (
        "private key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    ),
    ("aws access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    ("github token", r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    ("slack token", r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    ("stripe key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),
    ("anthropic key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai key", r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
];

/// A name that says it holds a secret, then `=`, `:`, `:=` or `=>`, then a quoted or bare
/// value drawn from the base64 / hex alphabets.
const ASSIGNED_RULE: &str = r#"(?i)([a-z0-9_.-]*(?:key|secret|token|passwd|password|pwd|credential)[a-z0-9_.-]*)["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9+/=_-]{20,})"#;

/// Compiled once. A pattern that failed to compile would be dropped here; the unit tests
/// find every rule's sample, so such a mistake cannot pass them.
static TOKENS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    TOKEN_RULES
        .iter()
        .filter_map(|(kind, pattern)| Regex::new(pattern).ok().map(|re| (*kind, re)))
        .collect()
});

static ASSIGNED: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(ASSIGNED_RULE).ok());

/// Above these (bits per character) a value looks random rather than written by a person.
const HEX_ENTROPY: f64 = 3.0;
const BASE64_ENTROPY: f64 = 3.5;
const MIN_RANDOM_LEN: usize = 20;

const REDACTED: &str = "[redacted]";

/// The secrets in the added lines of `patch`, masked.
pub fn scan(patch: &str) -> Vec<SecretFinding> {
    let mut findings = Vec::new();
    for line in patch_lines(patch).into_iter().filter(|l| l.added) {
        for (kind, secret) in secrets_in(line.text, !is_lock_file(line.path)) {
            findings.push(SecretFinding {
                path: line.path.to_string(),
                line: line.line,
                kind: kind.to_string(),
                masked: crate::secrets::mask(secret),
            });
        }
    }
    findings
}

/// `text` with every secret the scan recognises replaced by `[redacted]` and every
/// credential in a URL by `***`: for text that comes from outside (a check's reason, a
/// criterion's evidence) and goes somewhere public, such as a pull request. Not even the
/// masked tail is kept there.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for (_, secret) in secrets_in(text, true) {
        out = out.replace(secret, REDACTED);
    }
    strip_url_credentials(&out)
}

/// `https://user:token@host/x` → `https://***@host/x`.
fn strip_url_credentials(text: &str) -> String {
    static URL_USERINFO: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@").ok());
    match URL_USERINFO.as_ref() {
        Some(re) => re.replace_all(text, "${1}***@").into_owned(),
        None => text.to_string(),
    }
}

/// The (kind, secret) pairs in one line. `assigned` turns on the random-value rule (off for
/// lock files, whose checksums and commit ids are random by design).
fn secrets_in(text: &str, assigned: bool) -> Vec<(&'static str, &str)> {
    let mut found: Vec<(&'static str, &str)> = Vec::new();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let overlaps = |taken: &[(usize, usize)], s: usize, e: usize| {
        taken.iter().any(|&(ts, te)| s < te && ts < e)
    };
    for (kind, re) in TOKENS.iter() {
        for m in re.find_iter(text) {
            if overlaps(&taken, m.start(), m.end()) || is_placeholder(m.as_str()) {
                continue;
            }
            taken.push((m.start(), m.end()));
            found.push((kind, m.as_str()));
        }
    }
    if assigned && let Some(re) = ASSIGNED.as_ref() {
        for caps in re.captures_iter(text) {
            let Some(value) = caps.get(2) else { continue };
            if overlaps(&taken, value.start(), value.end())
                || is_placeholder(value.as_str())
                || !looks_random(value.as_str())
            {
                continue;
            }
            taken.push((value.start(), value.end()));
            found.push(("high-entropy string", value.as_str()));
        }
    }
    found
}

/// Values that stand for a secret without being one.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "xxxx",
        "changeme",
        "change_me",
        "example",
        "placeholder",
        "dummy",
        "redacted",
        "your_",
        "your-",
        "yourkey",
        "replace",
        "sample",
        "fake",
        "notreal",
        "todo",
        "0000000000",
        "1234567890",
        "abcdef123",
    ];
    WORDS.iter().any(|w| lower.contains(w))
}

/// Long enough, mixes letters and digits, and its characters are spread like random ones.
fn looks_random(value: &str) -> bool {
    let value = value.trim_end_matches('=');
    if value.len() < MIN_RANDOM_LEN
        || !value.bytes().any(|b| b.is_ascii_digit())
        || !value.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return false;
    }
    let threshold = if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        HEX_ENTROPY
    } else {
        BASE64_ENTROPY
    };
    shannon_entropy(value) > threshold
}

/// Bits per character of `value`'s character distribution.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let len = value.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

/// Lock files pin dependencies by checksum and commit id: random by design, never secrets.
fn is_lock_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".lock")
        || matches!(
            name,
            "package-lock.json" | "npm-shrinkwrap.json" | "pnpm-lock.yaml" | "go.sum"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A patch that adds `lines` to `path` as a new file.
    fn new_file(path: &str, lines: &[&str]) -> String {
        let mut p = format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
            lines.len()
        );
        for l in lines {
            p.push('+');
            p.push_str(l);
            p.push('\n');
        }
        p
    }

    // Samples are assembled at run time so the source holds no literal token.
    fn aws() -> String {
        format!("AKIA{}", "Q3RZ7WJ2KD5LMN4P")
    }
    fn github() -> String {
        format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    }

    #[test]
    fn every_rule_compiles() {
        assert_eq!(TOKENS.len(), TOKEN_RULES.len());
        assert!(ASSIGNED.is_some());
    }

    #[test]
    fn each_token_format_is_found_on_its_line() {
        let samples: Vec<(&str, String)> = vec![
            ("aws access key", aws()),
            ("github token", github()),
            (
                "github token",
                format!(
                    "github_pat_{}",
                    "11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789"
                ),
            ),
            (
                "slack token",
                format!("xoxb-{}", "2918374650-Qm7xP2kLr9TzW4nB"),
            ),
            (
                "stripe key",
                format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc"),
            ),
            (
                "anthropic key",
                format!("sk-ant-{}", "api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1"),
            ),
            (
                "openai key",
                format!("sk-proj-{}", "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0"),
            ),
            (
                "jwt",
                format!(
                    "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                    "zdWIiOiIxMjM0NTY3ODkwIn0", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
                ),
            ),
            ("private key", "-----BEGIN RSA PRIVATE KEY-----".to_string()),
            ("private key", "-----BEGIN PRIVATE KEY-----".to_string()),
        ];
        for (kind, secret) in &samples {
            let patch = new_file(
                "src/config.py",
                &["import os", "", &format!("VALUE = \"{secret}\""), "x = 1"],
            );
            let found = scan(&patch);
            assert_eq!(found.len(), 1, "{kind}: {found:?}");
            assert_eq!(found[0].kind, *kind);
            assert_eq!(found[0].path, "src/config.py");
            assert_eq!(found[0].line, 3, "{kind}");
            assert!(!found[0].masked.contains(secret.as_str()));
            assert_eq!(found[0].masked, crate::secrets::mask(secret));
        }
    }

    #[test]
    fn line_numbers_follow_the_hunk_header_and_skip_removed_and_context_lines() {
        let token = github();
        let patch = format!(
            "diff --git a/app/settings.py b/app/settings.py\n--- a/app/settings.py\n+++ b/app/settings.py\n\
             @@ -10,3 +10,5 @@ def load():\n context = 1\n-old = \"{token}\"\n+new = 2\n+++plus = 3\n+token = \"{token}\"\n context = 4\n\
             @@ -40,2 +41,2 @@\n-a = 1\n+b = \"{}\"\n tail = 0\n",
            aws()
        );
        let found = scan(&patch);
        let at: Vec<(u32, &str)> = found.iter().map(|f| (f.line, f.kind.as_str())).collect();
        // The removed token on old line 11 is not the change's doing.
        assert_eq!(at, vec![(13, "github token"), (41, "aws access key")]);
        let lines = patch_lines(&patch);
        assert!(
            lines
                .iter()
                .any(|l| l.added && l.line == 12 && l.text == "++plus = 3"),
            "an added line starting with ++ is content: {lines:?}"
        );
        assert!(lines.iter().any(|l| !l.added && l.line == 11));
    }

    #[test]
    fn random_values_assigned_to_secret_names_are_found() {
        let patch = new_file(
            ".env",
            &[
                "DEBUG=true",
                "API_KEY=q8Vf3LzP1xR7mK2nW9tY4bH6",
                "session_secret: \"9f86d081884c7d659a2feaa0c55ad015\"",
                "db_password = 'Zr4!x'",
            ],
        );
        let found = scan(&patch);
        let at: Vec<(u32, &str)> = found.iter().map(|f| (f.line, f.kind.as_str())).collect();
        assert_eq!(
            at,
            vec![(2, "high-entropy string"), (3, "high-entropy string")]
        );
        assert!(!found[0].masked.contains("q8Vf3LzP1xR7mK2nW9tY4bH6"));
    }

    #[test]
    fn placeholders_references_and_plain_names_are_not_findings() {
        let patch = new_file(
            "src/settings.py",
            &[
                "API_KEY = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
                "SECRET_KEY = \"changeme-changeme-changeme\"",
                "TOKEN = \"${GITHUB_TOKEN}\"",
                "password = os.environ[\"DB_PASSWORD\"]",
                "token = process.env.API_TOKEN",
                "aws = \"AKIAIOSFODNN7EXAMPLE\"",
                "openai_key = \"sk-your-key-goes-here-please\"",
                "primary_key = \"user_account_identifier_name\"",
                "token_count = 12345",
            ],
        );
        assert_eq!(scan(&patch), vec![]);
    }

    #[test]
    fn lock_file_checksums_are_not_findings_but_tokens_in_them_are() {
        let patch = new_file(
            "Cargo.lock",
            &[
                "checksum = \"3a7e2f5c9b1d4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f\"",
                "token_key = \"7d9e1f3a5b7c9d1e3f3a7e2f5c9b1d4e6f8a0b2c\"",
            ],
        );
        assert_eq!(scan(&patch), vec![]);
        let with_token = new_file("poetry.lock", &[&format!("x = \"{}\"", aws())]);
        assert_eq!(scan(&with_token).len(), 1);
    }

    #[test]
    fn redact_masks_tokens_and_url_credentials() {
        let token = github();
        let text = format!(
            "push to https://x-access-token:{token}@github.com/acme/app.git failed; key {}",
            aws()
        );
        let clean = redact(&text);
        assert!(
            !clean.contains(&token) && !clean.contains(&aws()),
            "{clean}"
        );
        assert!(
            clean.contains("https://***@github.com/acme/app.git"),
            "{clean}"
        );
        assert!(clean.ends_with("key [redacted]"), "{clean}");
        assert_eq!(redact("plain text"), "plain text");
    }

    #[test]
    fn entropy_tells_random_from_repeated() {
        assert!(shannon_entropy("aaaaaaaaaaaaaaaaaaaa") < 0.01);
        assert!(shannon_entropy("q8Vf3LzP1xR7mK2nW9tY4bH6") > BASE64_ENTROPY);
        assert_eq!(shannon_entropy(""), 0.0);
    }
}
