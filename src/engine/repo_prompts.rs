//! The prompts of a run on a client's repository, and the replies it reads. Pure text in,
//! data out. Each prompt puts file contents last, fenced with more backticks than the
//! content holds, so a `## ` line inside a file never ends a section early.

use super::fsm::repo::{PlannedFile, RepoWork};
use super::prompts::{TaskBrief, find_json};
use crate::engine::tools::Snippet;
use serde_json::Value;

pub const SYSTEM_REPO_PLANNER: &str = "You are the planner of a coding agent working in a client's \
existing repository. From the structure and search hits given, name the files to change or create \
and, for each acceptance criterion, the test or shell command that will prove it (it runs from the \
repository root in a sandbox with no network). Reply with one JSON object and nothing else: \
{\"approach\": string, \"files\": [{\"path\": string, \"action\": \"change\"|\"create\", \"why\": string}], \
\"criteria\": [{\"text\": string, \"check\": string}]}. Name only files the task needs.";

pub const SYSTEM_REPO_WRITER: &str = "You are the writer of a coding agent working in a client's \
existing repository. Change existing files ONLY with a unified diff in one ```diff block \
(--- a/PATH / +++ b/PATH headers, correct @@ line counts, enough context to apply). Write each new \
file whole in its own block whose info string is `file path=PATH`. Add or update tests that prove \
the acceptance criteria. Reply with those blocks and nothing else.";

/// What the plan says.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoPlan {
    pub approach: String,
    pub files: Vec<PlannedFile>,
    /// (criterion text, command that proves it).
    pub checks: Vec<(String, String)>,
}

/// The changes a writer's reply asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoChanges {
    /// One unified diff (possibly of several files), as written.
    pub diff: String,
    /// New files written whole: (path, content).
    pub new_files: Vec<(String, String)>,
}

impl RepoChanges {
    pub fn is_empty(&self) -> bool {
        self.diff.trim().is_empty() && self.new_files.is_empty()
    }
}

fn criteria_section(criteria: &[String]) -> String {
    if criteria.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Acceptance criteria\n");
    for c in criteria {
        s.push_str(&format!("- {c}\n"));
    }
    s
}

/// Cuts `text` to at most `max` bytes on a line boundary, saying so.
pub fn bounded(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map(|i| i + 1).unwrap_or(end);
    (
        format!(
            "{}[… cut here: the rest is left out to keep within the limit]\n",
            &text[..end]
        ),
        true,
    )
}

/// A fence longer than any run of backticks in `content`.
fn fence_for(content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

pub fn plan_prompt(
    task: &TaskBrief,
    criteria: &[String],
    repo: &RepoWork,
    structure: &str,
    hits: &str,
    max_files: usize,
) -> String {
    format!(
        "{}{}\n## Repository\nbase: {} @ {}\ntest: {}\nlint: {}\nat most {max_files} files\n\n## Search hits\n{}\n## Structure\n{}\n",
        task.render(),
        criteria_section(criteria),
        repo.base_branch,
        short(&repo.base_commit),
        repo.commands.test.as_deref().unwrap_or("none detected"),
        repo.commands.lint.as_deref().unwrap_or("none detected"),
        if hits.trim().is_empty() {
            "(none)\n"
        } else {
            hits
        },
        structure,
    )
}

pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The writer's prompt: the plan, feedback, examples, then the current files last.
pub fn write_prompt(
    task: &TaskBrief,
    approach: &str,
    repo: &RepoWork,
    contents: &[(String, String)],
    snippets: &[Snippet],
) -> String {
    let mut p = task.render();
    p.push_str(&format!("\n## Approach\n{approach}\n"));
    if !repo.criteria.is_empty() {
        p.push_str("\n## Acceptance criteria\n");
        for c in &repo.criteria {
            p.push_str(&format!(
                "- {} — proven by: {}\n",
                c.text,
                c.check.as_deref().unwrap_or("(no command named yet)")
            ));
        }
    }
    if let Some(f) = &repo.feedback {
        p.push_str(&format!("\n## Feedback\n{}\n", f.trim_end()));
    }
    if !snippets.is_empty() {
        p.push_str("\n## Similar snippets from this client\n");
        for s in snippets {
            p.push_str(&format!(
                "{} ({}):\n{}\n",
                s.description,
                s.language,
                s.code.trim_end()
            ));
        }
    }
    p.push_str("\n## Files\n");
    for f in &repo.files {
        let action = if f.exists { "change" } else { "create" };
        p.push_str(&format!("### {} ({action})\nwhy: {}\n", f.path, f.why));
        if let Some((_, content)) = contents.iter().find(|(path, _)| path == &f.path) {
            let fence = fence_for(content);
            p.push_str(&format!("{fence}\n{}{fence}\n", with_newline(content)));
        }
    }
    p
}

fn with_newline(s: &str) -> String {
    if s.ends_with('\n') || s.is_empty() {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// The evaluator's prompt: the evidence first, the diff last.
pub fn evaluate_prompt(task: &TaskBrief, evidence: &[String], diff: &str) -> String {
    let fence = fence_for(diff);
    format!(
        "{}\n## Evidence\n{}\n\n## Diff\n{fence}diff\n{}{fence}\n",
        task.render(),
        evidence.join("\n"),
        with_newline(diff)
    )
}

/// Reads the plan; paths are checked to be plain relative paths.
pub fn parse_plan(text: &str, max_files: usize) -> Result<RepoPlan, String> {
    let v = find_json(text, '{', '}').ok_or("the reply holds no JSON object")?;
    let approach = v
        .get("approach")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut files: Vec<PlannedFile> = Vec::new();
    for f in v
        .get("files")
        .and_then(Value::as_array)
        .ok_or("the plan names no files (a \"files\" array)")?
    {
        let path = f
            .get("path")
            .and_then(Value::as_str)
            .map(|p| p.trim().trim_start_matches("./").to_string())
            .ok_or("a planned file has no \"path\"")?;
        check_path(&path)?;
        if files.iter().any(|p| p.path == path) {
            continue;
        }
        let create = f.get("action").and_then(Value::as_str) == Some("create");
        files.push(PlannedFile {
            path,
            exists: !create,
            why: f
                .get("why")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
    }
    if files.is_empty() {
        return Err("the plan names no files to change or create".into());
    }
    if files.len() > max_files {
        return Err(format!(
            "the plan names {} files; at most {max_files} are allowed",
            files.len()
        ));
    }
    let checks = v
        .get("criteria")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    Some((
                        c.get("text")?.as_str()?.trim().to_string(),
                        c.get("check")?.as_str()?.trim().to_string(),
                    ))
                })
                .filter(|(_, check)| !check.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(RepoPlan {
        approach,
        files,
        checks,
    })
}

/// A path the writer may name: relative, inside the repository, not in `.git`.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"))
    {
        return Err(format!(
            "{path:?} is not a path inside the repository (relative, no `..`, not in .git)"
        ));
    }
    Ok(())
}

/// Reads the writer's reply: ```diff blocks (joined) and ```file path=… blocks. A reply
/// with no fences that is itself a diff is taken as one.
pub fn parse_changes(text: &str) -> Result<RepoChanges, String> {
    let mut changes = RepoChanges::default();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut i = 0;
    let mut fenced = false;
    while i < lines.len() {
        let line = lines[i].trim_end_matches(['\n', '\r']);
        let ticks = line.chars().take_while(|c| *c == '`').count();
        if ticks < 3 {
            i += 1;
            continue;
        }
        fenced = true;
        let info = line[ticks..].trim();
        let fence = &line[..ticks];
        let mut body = String::new();
        i += 1;
        while i < lines.len() {
            let l = lines[i].trim_end_matches(['\n', '\r']);
            if l.starts_with(fence) && l[ticks..].trim().is_empty() {
                break;
            }
            body.push_str(lines[i]);
            i += 1;
        }
        i += 1;
        if let Some(path) = file_path_of(info) {
            check_path(&path)?;
            changes.new_files.push((path, body));
        } else if info.starts_with("diff") || info.starts_with("patch") || looks_like_diff(&body) {
            changes.diff.push_str(&body);
        }
    }
    if !fenced && looks_like_diff(text) {
        changes.diff = text.to_string();
    }
    if changes.is_empty() {
        return Err("the reply holds no ```diff block and no ```file path=… block".to_string());
    }
    Ok(changes)
}

fn file_path_of(info: &str) -> Option<String> {
    let rest = info.strip_prefix("file")?.trim();
    let path = rest.strip_prefix("path=").unwrap_or(rest);
    let path = path.trim().trim_matches('"').trim_start_matches("./");
    (!path.is_empty()).then(|| path.to_string())
}

fn looks_like_diff(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("--- ")) && text.lines().any(|l| l.starts_with("+++ "))
}

/// The paths a diff changes (from its `+++` headers, or `---` for a deletion).
pub fn diff_paths(diff: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut old: Option<String> = None;
    for l in diff.lines() {
        if let Some(p) = l.strip_prefix("--- ") {
            old = Some(strip_side(p));
        } else if let Some(p) = l.strip_prefix("+++ ") {
            let new = strip_side(p);
            let path = if new == "/dev/null" {
                old.take().unwrap_or_default()
            } else {
                new
            };
            if !path.is_empty() && !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

fn strip_side(p: &str) -> String {
    let p = p.split('\t').next().unwrap_or("").trim();
    p.strip_prefix("a/")
        .or_else(|| p.strip_prefix("b/"))
        .unwrap_or(p)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_read_and_paths_checked() {
        let reply = r#"Here: {"approach": "add a flag", "files": [
            {"path": "greet/cli.py", "action": "change", "why": "the flag"},
            {"path": "tests/test_shout.py", "action": "create", "why": "prove it"}],
            "criteria": [{"text": "shouts", "check": "python3 -m unittest tests.test_shout"}]}"#;
        let plan = parse_plan(reply, 8).unwrap();
        assert_eq!(plan.files.len(), 2);
        assert!(plan.files[0].exists && !plan.files[1].exists);
        assert_eq!(plan.checks[0].1, "python3 -m unittest tests.test_shout");
        assert!(parse_plan(r#"{"files": [{"path": "../x"}]}"#, 8).is_err());
        assert!(parse_plan(r#"{"files": [{"path": ".git/config"}]}"#, 8).is_err());
        assert!(parse_plan(r#"{"files": [{"path": "a"}, {"path": "b"}]}"#, 1).is_err());
    }

    #[test]
    fn changes_are_read_from_diff_and_file_blocks() {
        let reply = "```diff\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```\n\n````file path=tests/test_x.py\nprint('```')\n````\n";
        let c = parse_changes(reply).unwrap();
        assert!(c.diff.starts_with("--- a/x.py\n"));
        assert_eq!(
            c.new_files,
            vec![("tests/test_x.py".to_string(), "print('```')\n".to_string())]
        );
        assert_eq!(diff_paths(&c.diff), vec!["x.py".to_string()]);
        assert!(parse_changes("I changed it, trust me").is_err());
        let bare = "--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse_changes(bare).unwrap().diff, bare);
    }

    #[test]
    fn file_contents_never_end_a_section() {
        let task = TaskBrief {
            client_id: "acme".into(),
            title: "t".into(),
            description: String::new(),
            stack: "python".into(),
        };
        let repo = RepoWork {
            files: vec![PlannedFile {
                path: "README.md".into(),
                exists: true,
                why: "docs".into(),
            }],
            ..RepoWork::default()
        };
        let p = write_prompt(
            &task,
            "a",
            &repo,
            &[("README.md".into(), "## Usage\n```sh\nrun\n```\n".into())],
            &[],
        );
        assert!(p.contains("````\n## Usage\n```sh\nrun\n```\n````\n"));
        assert!(bounded("a\nb\nc\n", 3).1);
        assert_eq!(bounded("a\nb\n", 10), ("a\nb\n".to_string(), false));
    }
}
