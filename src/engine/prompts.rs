//! The prompts the agent writes and the replies it reads. Pure text in, data out. Prompts
//! are written in `## Section` blocks (see [`crate::llm::prompt_section`]).

use crate::domain::extension_of;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One unit of work from the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskSpec {
    pub title: String,
    pub description: String,
    pub language: String,
    pub filename: String,
}

impl SubtaskSpec {
    /// Where this subtask's tests go, by the conventions of its language.
    pub fn test_filename(&self) -> String {
        let module = self
            .filename
            .rsplit_once('.')
            .map(|(m, _)| m)
            .unwrap_or(&self.filename);
        match self.language.as_str() {
            "typescript" => format!("{module}.test.ts"),
            "javascript" => format!("{module}.test.js"),
            "bash" => format!("test_{module}.sh"),
            _ => format!("test_{module}.py"),
        }
    }

    fn render(&self) -> String {
        format!(
            "title: {}\nlanguage: {}\nfilename: {}\ndescription: {}\n",
            self.title, self.language, self.filename, self.description
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    pub approach: String,
    pub subtasks: Vec<SubtaskSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// 0–10.
    pub score: f64,
    pub issues: Vec<String>,
}

/// What the task is, as every prompt states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskBrief {
    pub client_id: String,
    pub title: String,
    pub description: String,
    pub stack: String,
}

impl TaskBrief {
    pub(crate) fn render(&self) -> String {
        format!(
            "## Task\ntitle: {}\nstack: {}\n\n## Description\n{}\n",
            self.title,
            self.stack,
            if self.description.trim().is_empty() {
                &self.title
            } else {
                &self.description
            }
        )
    }
}

pub const SYSTEM_PLANNER: &str = "You are the planner of a coding agent that delivers client work. \
Reply with one JSON object and nothing else: {\"stack\": string, \"approach\": string, \"subtasks\": \
[{\"title\", \"description\", \"language\", \"filename\"}]}. Keep subtasks small and each in one file.";

pub const SYSTEM_WRITER: &str = "You are the writer of a coding agent. Reply with the complete file \
in one fenced code block and nothing else. The code must run as is.";

pub const SYSTEM_BATCH_WRITER: &str = "You are the writer of a coding agent. Reply with one JSON array \
and nothing else: one object {\"filename\", \"code\"} per subtask, in the order given.";

pub const SYSTEM_TESTER: &str = "You write tests for one file. Reply with the complete test file in \
one fenced code block. Use only the standard library of the language.";

pub const SYSTEM_EVALUATOR: &str = "You review a coding agent's work from the evidence given. Reply \
with one JSON object and nothing else: {\"score\": 0-10, \"issues\": [string]}. A step that was \
skipped is not evidence that it passed.";

/// How code of a stack is written and tested where the language alone does not say it.
fn conventions(task: &TaskBrief, sub: &SubtaskSpec) -> &'static str {
    match (task.stack.as_str(), sub.language.as_str()) {
        ("react-native", _) => {
            "\n## Conventions\nReact Native with Expo, in strict TypeScript: each file \
under components/ exports one function component (named as the file) and the pure functions \
it uses; import only from \"react\" and \"react-native\". Tests use node's test runner \
(`import { test } from \"node:test\"`, `import assert from \"node:assert/strict\"`) and test \
the exported functions, importing them from the component's file (\"./Name\").\n"
        }
        (_, "typescript") => {
            "\n## Conventions\nStrict TypeScript compiled to CommonJS. Tests use \
node's test runner (`import { test } from \"node:test\"`, `import assert from \
\"node:assert/strict\"`) and import the module by its relative path without extension.\n"
        }
        _ => "",
    }
}

pub fn plan_prompt(task: &TaskBrief) -> String {
    format!("{}\n## Instructions\nPlan the work.\n", task.render())
}

pub fn write_prompt(
    task: &TaskBrief,
    sub: &SubtaskSpec,
    examples: &[crate::engine::tools::Snippet],
    issues: &[String],
    context: &str,
    previous_code: Option<&str>,
) -> String {
    let mut p = task.render();
    p.push_str(&format!("\n## Subtask\n{}", sub.render()));
    p.push_str(conventions(task, sub));
    if !examples.is_empty() {
        p.push_str("\n## Examples\n");
        for e in examples.iter().take(3) {
            p.push_str(&format!(
                "{}:\n```{}\n{}\n```\n",
                e.description,
                e.language,
                e.code.trim_end()
            ));
        }
    }
    if let Some(code) = previous_code {
        p.push_str(&format!(
            "\n## Current code\n```{}\n{}\n```\n",
            sub.language,
            code.trim_end()
        ));
    }
    p.push_str("\n## Issues to fix\n");
    if issues.is_empty() {
        p.push_str("none\n");
    } else {
        for i in issues {
            p.push_str(&format!("- {i}\n"));
        }
    }
    if !context.is_empty() {
        p.push_str(&format!("\n## Recent actions\n{context}"));
    }
    p
}

pub fn batch_prompt(task: &TaskBrief, subs: &[SubtaskSpec]) -> String {
    let list: Vec<Value> = subs
        .iter()
        .map(|s| serde_json::json!({"title": s.title, "description": s.description, "language": s.language, "filename": s.filename}))
        .collect();
    format!(
        "{}\n## Subtasks\n{}\n",
        task.render(),
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    )
}

pub fn tests_prompt(task: &TaskBrief, sub: &SubtaskSpec, code: &str) -> String {
    format!(
        "{}\n## Subtask\n{}test_filename: {}\n{}\n## Code\n```{}\n{}\n```\n",
        task.render(),
        sub.render(),
        sub.test_filename(),
        conventions(task, sub),
        sub.language,
        code.trim_end()
    )
}

pub fn evaluate_prompt(
    task: &TaskBrief,
    sub: &SubtaskSpec,
    code: &str,
    evidence: &[String],
) -> String {
    format!(
        "{}\n## Subtask\n{}\n## Code\n```{}\n{}\n```\n\n## Evidence\n{}\n",
        task.render(),
        sub.render(),
        sub.language,
        code.trim_end(),
        evidence.join("\n")
    )
}

/// The first JSON value of the wanted kind in a reply, fences and chatter around it allowed.
pub(crate) fn find_json(text: &str, open: char, close: char) -> Option<Value> {
    let start = text.find(open)?;
    let end = text.rfind(close)?;
    if end < start {
        return None;
    }
    serde_json::from_str(&text[start..=end]).ok()
}

/// A file name a plan may use: relative, inside the deliverable, no surprises.
fn safe_filename(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

pub fn parse_plan(text: &str, default_stack: &str) -> Result<Plan, String> {
    let v = find_json(text, '{', '}').ok_or("the plan is not a JSON object")?;
    let subs = v
        .get("subtasks")
        .and_then(Value::as_array)
        .ok_or("the plan has no subtasks list")?;
    if subs.is_empty() {
        return Err("the plan has no subtasks".into());
    }
    let mut out = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let get = |k: &str| {
            s.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let title = get("title");
        if title.is_empty() {
            return Err(format!("subtask {} has no title", i + 1));
        }
        let language = match get("language") {
            l if l.is_empty() => crate::domain::language_of_stack(default_stack).to_string(),
            l => l.to_lowercase(),
        };
        let filename = match get("filename") {
            f if f.is_empty() => format!("part{}.{}", i + 1, extension_of(&language)),
            f => f,
        };
        if !safe_filename(&filename) {
            return Err(format!(
                "subtask {} names an unsafe file {filename:?}",
                i + 1
            ));
        }
        let description = match get("description") {
            d if d.is_empty() => title.clone(),
            d => d,
        };
        out.push(SubtaskSpec {
            title,
            description,
            language,
            filename,
        });
    }
    let mut names: Vec<&str> = out.iter().map(|s| s.filename.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("two subtasks write the same file".into());
    }
    let text_of = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Plan {
        stack: if text_of("stack").is_empty() {
            default_stack.to_string()
        } else {
            text_of("stack")
        },
        approach: text_of("approach"),
        subtasks: out,
    })
}

/// The code in a reply: the first fenced block, else the whole reply.
pub fn extract_code(text: &str) -> String {
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        let end = body.find("```").unwrap_or(body.len());
        return body[..end].to_string();
    }
    let mut s = text.trim().to_string();
    s.push('\n');
    s
}

/// The code for each subtask from a batched reply, or `None` when the reply does not fit.
pub fn parse_batch(text: &str, subs: &[SubtaskSpec]) -> Option<Vec<String>> {
    let items = find_json(text, '[', ']')?;
    let items = items.as_array()?;
    if items.len() != subs.len() {
        return None;
    }
    items
        .iter()
        .map(|i| {
            i.get("code")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
                .map(str::to_string)
        })
        .collect()
}

/// The evaluator's verdict; an unreadable reply scores 0 with that as the issue.
pub fn parse_evaluation(text: &str) -> Evaluation {
    let Some(v) = find_json(text, '{', '}') else {
        return Evaluation {
            score: 0.0,
            issues: vec!["the evaluator's reply could not be read".into()],
        };
    };
    let score = v
        .get("score")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .clamp(0.0, 10.0);
    let issues = v
        .get("issues")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Evaluation { score, issues }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_with_unsafe_files_are_refused() {
        let bad = r#"{"subtasks":[{"title":"x","filename":"../../etc/passwd"}]}"#;
        assert!(parse_plan(bad, "python").unwrap_err().contains("unsafe"));
        let dup =
            r#"{"subtasks":[{"title":"a","filename":"a.py"},{"title":"b","filename":"a.py"}]}"#;
        assert!(parse_plan(dup, "python").is_err());
        let ok = "Sure!\n```json\n{\"subtasks\":[{\"title\":\"a\"}]}\n```";
        let p = parse_plan(ok, "python").unwrap();
        assert_eq!(p.subtasks[0].filename, "part1.py");
    }

    #[test]
    fn code_comes_out_of_fences() {
        assert_eq!(
            extract_code("Here:\n```python\nprint(1)\n```\nDone"),
            "print(1)\n"
        );
        assert_eq!(extract_code("print(2)"), "print(2)\n");
    }

    #[test]
    fn batches_must_match_the_subtasks() {
        let subs = vec![
            SubtaskSpec {
                title: "a".into(),
                description: "a".into(),
                language: "python".into(),
                filename: "a.py".into()
            };
            2
        ];
        assert!(parse_batch(r#"[{"code":"x"},{"code":"y"}]"#, &subs).is_some());
        assert!(parse_batch(r#"[{"code":"x"}]"#, &subs).is_none());
        assert!(parse_batch("not json", &subs).is_none());
        assert!(parse_batch(r#"[{"code":"x"},{"nocode":1}]"#, &subs).is_none());
    }

    #[test]
    fn evaluations_are_read_leniently() {
        let e = parse_evaluation("```json\n{\"score\": 6.5, \"issues\": [\"no docstring\"]}\n```");
        assert_eq!((e.score, e.issues.len()), (6.5, 1));
        assert_eq!(parse_evaluation("great job").score, 0.0);
    }
}
