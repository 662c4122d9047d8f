//! The offline model's answers in a client's repository: a plan naming one source file to
//! change and a new test file, and a real unified diff against the file's current content
//! that adds a small function named after the task, with a test that proves it. Simulated,
//! deterministic and runnable, so a repository run can be watched end to end with no key.

use super::{prompt_section, section_field};
use serde_json::json;

/// The plan: the source file that best matches the task, and a new test beside the
/// repository's other tests.
pub fn plan(prompt: &str) -> String {
    let task = prompt_section(prompt, "Task").unwrap_or("");
    let title = section_field(task, "title").unwrap_or("task");
    let stack = section_field(task, "stack").unwrap_or("python");
    let language = crate::domain::language_of_stack(stack);
    let ext = crate::domain::extension_of(language);
    let structure = prompt_section(prompt, "Structure").unwrap_or("");
    let paths: Vec<&str> = structure
        .lines()
        .filter_map(|l| l.split(" (").next())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let words: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_lowercase)
        .collect();
    let sources: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| p.ends_with(&format!(".{ext}")) && !is_test(p) && !p.ends_with("__init__.py"))
        .collect();
    let source = sources
        .iter()
        .copied()
        .max_by_key(|p| {
            let lower = p.to_lowercase();
            let hits = words.iter().filter(|w| lower.contains(w.as_str())).count();
            // Entry points first among equals, then the shortest path.
            let entry = ["cli", "main", "app", "index"]
                .iter()
                .any(|n| lower.contains(n));
            (hits, entry, usize::MAX - p.len())
        })
        .unwrap_or("main.py");
    let name = super::offline::slug(title);
    let tests_dir = paths.iter().any(|p| p.starts_with("tests/"));
    let test_path = match language {
        "python" if tests_dir => format!("tests/test_{name}.py"),
        "python" => format!("test_{name}.py"),
        _ if tests_dir => format!("tests/{name}.test.{ext}"),
        _ => format!("{name}.test.{ext}"),
    };
    let check = match language {
        "python" => format!(
            "python3 -m unittest -q {}",
            test_path.trim_end_matches(".py").replace('/', ".")
        ),
        _ => format!("node --test {test_path}"),
    };
    let criteria: Vec<serde_json::Value> = prompt_section(prompt, "Acceptance criteria")
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|text| json!({"text": text, "check": check}))
        .collect();
    let plan = json!({
        "approach": format!("simulated plan: add `{name}` to {source} and a test for it in {test_path}"),
        "files": [
            {"path": source, "action": "change", "why": format!("the task's change: {title}")},
            {"path": test_path, "action": "create", "why": "a test that proves it"},
        ],
        "criteria": criteria,
    });
    serde_json::to_string_pretty(&plan).unwrap_or_default()
}

fn is_test(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    path.starts_with("tests/")
        || path.contains("/tests/")
        || file.starts_with("test_")
        || file.contains(".test.")
}

/// One `### path (action)` block of the prompt's Files section.
struct FileBlock {
    path: String,
    create: bool,
    content: Option<String>,
}

/// Reads the Files section (the prompt's last), honouring fences of any length.
fn file_blocks(prompt: &str) -> Vec<FileBlock> {
    let Some(start) = prompt.find("\n## Files\n") else {
        return vec![];
    };
    let mut blocks: Vec<FileBlock> = Vec::new();
    let mut lines = prompt[start + 10..].lines();
    while let Some(line) = lines.next() {
        if let Some(head) = line.strip_prefix("### ") {
            let (path, action) = head.rsplit_once(" (").unwrap_or((head, "change)"));
            blocks.push(FileBlock {
                path: path.to_string(),
                create: action.starts_with("create"),
                content: None,
            });
        } else if line.starts_with("```") {
            let fence = line;
            let mut content = String::new();
            for l in lines.by_ref() {
                if l == fence {
                    break;
                }
                content.push_str(l);
                content.push('\n');
            }
            if let Some(b) = blocks.last_mut() {
                b.content = Some(content);
            }
        }
    }
    blocks
}

/// The change: a diff adding the task's function to the source file (or, when it is already
/// there, a note of the feedback), and the new test file whole.
pub fn write(prompt: &str) -> String {
    let task = prompt_section(prompt, "Task").unwrap_or("");
    let title = section_field(task, "title").unwrap_or("task");
    let name = super::offline::slug(title);
    let feedback = prompt_section(prompt, "Feedback")
        .and_then(|f| f.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().chars().take(100).collect::<String>());
    let blocks = file_blocks(prompt);
    let mut reply = String::new();
    let mut module = None;
    for b in blocks.iter().filter(|b| !b.create && !is_test(&b.path)) {
        let old = b.content.clone().unwrap_or_default();
        let python = b.path.ends_with(".py");
        let comment = if python { "#" } else { "//" };
        let addition = if !old.contains(&format!("{name}(")) {
            if python {
                format!("\n\ndef {name}() -> str:\n    \"\"\"{title}\"\"\"\n    return {title:?}\n")
            } else {
                format!("\n\nexport function {name}() {{\n  return {title:?};\n}}\n")
            }
        } else {
            format!(
                "\n{comment} revised: {}\n",
                feedback.clone().unwrap_or_else(|| "no note".into())
            )
        };
        let new = format!("{}{addition}", old.trim_end_matches('\n'));
        let mut opts = diffy::DiffOptions::new();
        opts.set_original_filename(format!("a/{}", b.path));
        opts.set_modified_filename(format!("b/{}", b.path));
        reply.push_str(&format!(
            "```diff\n{}```\n\n",
            opts.create_patch(&old, &new)
        ));
        module.get_or_insert_with(|| {
            b.path
                .trim_end_matches(".py")
                .trim_end_matches(".js")
                .replace('/', ".")
        });
    }
    let module = module.unwrap_or_else(|| "main".into());
    for b in blocks.iter().filter(|b| b.create) {
        let test = if b.path.ends_with(".py") {
            let class: String = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect();
            format!(
                "import unittest\n\nfrom {module} import {name}\n\n\nclass Test{class}(unittest.TestCase):\n    def test_{name}(self):\n        self.assertEqual({name}(), {title:?})\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n"
            )
        } else {
            format!(
                "import {{ test }} from \"node:test\";\nimport assert from \"node:assert\";\n\ntest({title:?}, () => {{\n  assert.ok(true);\n}});\n"
            )
        };
        reply.push_str(&format!("```file path={}\n{test}```\n", b.path));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_the_source_and_a_new_test() {
        let prompt = "## Task\ntitle: Add a shout flag to greet\nstack: python\n\n## Description\nx\n\n## Acceptance criteria\n- greet can shout\n\n## Structure\nREADME.md (3 lines)\ngreet/__init__.py (0 lines)\ngreet/cli.py (20 lines): greet, main\ntests/test_cli.py (12 lines): TestGreet\n";
        let v: serde_json::Value = serde_json::from_str(&plan(prompt)).unwrap();
        assert_eq!(v["files"][0]["path"], "greet/cli.py");
        assert_eq!(
            v["files"][1]["path"],
            "tests/test_add_a_shout_flag_to_greet.py"
        );
        assert_eq!(
            v["criteria"][0]["check"],
            "python3 -m unittest -q tests.test_add_a_shout_flag_to_greet"
        );
    }

    #[test]
    fn write_gives_a_diff_that_applies_and_a_test() {
        let old = "def greet(name):\n    return f\"Hello, {name}!\"\n";
        let prompt = format!(
            "## Task\ntitle: Add shout\nstack: python\n\n## Files\n### greet/cli.py (change)\nwhy: x\n```\n{old}```\n### tests/test_add_shout.py (create)\nwhy: y\n"
        );
        let reply = write(&prompt);
        let changes = crate::engine::repo_prompts::parse_changes(&reply).unwrap();
        let patch = diffy::Patch::from_str(&changes.diff).unwrap();
        let new = diffy::apply(old, &patch).unwrap();
        assert!(new.contains("def add_shout() -> str:"));
        assert_eq!(changes.new_files[0].0, "tests/test_add_shout.py");
        assert!(
            changes.new_files[0]
                .1
                .contains("from greet.cli import add_shout")
        );
    }
}
