//! The offline model: deterministic and simulated. It reads the same prompts a real model
//! gets, answers in the formats the engine asks for, writes real runnable code for simple
//! tasks, and reports the tokens its answers would cost so the ledger prices them like the
//! model it stands in for. Everything it produces is marked simulated.

use super::{
    Chunk, ChunkStream, LlmError, ModelRequest, Provider, Purpose, estimate_tokens, prompt_section,
    section_field,
};
use crate::domain::extension_of;
use crate::money::Usage;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

pub struct OfflineProvider {
    latency: Duration,
}

impl OfflineProvider {
    /// `latency` is spread over the streamed lines of each answer.
    pub fn new(latency: Duration) -> Self {
        OfflineProvider { latency }
    }
}

impl Provider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn simulated(&self) -> bool {
        true
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, LlmError>> {
        Box::pin(async move {
            let text = answer(request);
            let usage = Usage {
                input_tokens: estimate_tokens(&request.system) + estimate_tokens(&request.prompt),
                output_tokens: estimate_tokens(&text).min(request.max_tokens),
                ..Usage::default()
            };
            let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
            let pause = self.latency / (lines.len().max(1) as u32);
            let mut chunks: Vec<Chunk> = vec![Chunk::Usage(Usage {
                output_tokens: 0,
                ..usage
            })];
            chunks.extend(lines.into_iter().map(Chunk::Text));
            chunks.push(Chunk::Usage(usage));
            chunks.push(Chunk::Done {
                stop_reason: Some("end_turn".into()),
            });
            let stream = futures::stream::iter(chunks).then(move |c| async move {
                if matches!(c, Chunk::Text(_)) && !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Ok(c)
            });
            Ok(stream.boxed())
        })
    }
}

/// The answer to a request, by purpose.
pub fn answer(request: &ModelRequest) -> String {
    let p = &request.prompt;
    // A run in a client's repository asks for a grounded plan and diffs.
    if request.system == crate::engine::repo_prompts::SYSTEM_REPO_PLANNER {
        return super::offline_repo::plan(p);
    }
    if request.system == crate::engine::repo_prompts::SYSTEM_REPO_WRITER {
        return super::offline_repo::write(p);
    }
    match request.purpose {
        Purpose::Plan => plan(p),
        Purpose::Write => {
            let sub = Subtask::from_prompt(p);
            let issues = prompt_section(p, "Issues to fix").unwrap_or("");
            fenced(&sub.language, &write_code(&sub, issues))
        }
        Purpose::WriteBatch => write_batch(p),
        Purpose::Tests => {
            let sub = Subtask::from_prompt(p);
            fenced(&sub.language, &write_tests(&sub))
        }
        Purpose::Evaluate => evaluate(prompt_section(p, "Evidence").unwrap_or("")),
    }
}

struct Subtask {
    title: String,
    language: String,
    filename: String,
}

impl Subtask {
    fn from_prompt(prompt: &str) -> Subtask {
        let s = prompt_section(prompt, "Subtask").unwrap_or("");
        let language = section_field(s, "language").unwrap_or("python").to_string();
        Subtask {
            title: section_field(s, "title").unwrap_or("task").to_string(),
            filename: section_field(s, "filename")
                .map(str::to_string)
                .unwrap_or_else(|| format!("main.{}", extension_of(&language))),
            language,
        }
    }

    /// The component a `.tsx` file exports: its file name.
    fn component(&self) -> String {
        let file = self.filename.rsplit('/').next().unwrap_or(&self.filename);
        file.trim_end_matches(".tsx").to_string()
    }

    fn module(&self) -> &str {
        self.filename
            .rsplit_once('.')
            .map(|(m, _)| m)
            .unwrap_or(&self.filename)
    }
}

fn fenced(language: &str, code: &str) -> String {
    format!("```{language}\n{code}```\n")
}

pub(super) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
        if out.len() >= 32 {
            break;
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("part_{out}")
    } else {
        out
    }
}

/// Splits a task into subtasks: one per bullet of the description, else one.
fn plan(prompt: &str) -> String {
    let task = prompt_section(prompt, "Task").unwrap_or("");
    let title = section_field(task, "title").unwrap_or("task");
    let stack = section_field(task, "stack").unwrap_or("python");
    let language = crate::domain::language_of_stack(stack);
    let description = prompt_section(prompt, "Description").unwrap_or("");
    let bullets: Vec<&str> = description
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- ").or_else(|| l.strip_prefix("* ")))
        .filter(|l| !l.is_empty())
        .collect();
    let items: Vec<&str> = if bullets.is_empty() {
        vec![title]
    } else {
        bullets
    };
    let single = items.len() == 1;
    let react_native = stack == "react-native";
    let subtasks: Vec<Value> = items
        .iter()
        .map(|item| {
            let filename = if react_native {
                // Expo: one component per file under components/.
                format!("components/{}.tsx", pascal(item))
            } else if single {
                format!("main.{}", extension_of(language))
            } else {
                format!("{}.{}", slug(item), extension_of(language))
            };
            json!({"title": item, "description": item, "language": language, "filename": filename})
        })
        .collect();
    let plan = json!({
        "stack": stack,
        "approach": format!("simulated plan: {} part(s), each a small {language} module with a main entry point and a test", subtasks.len()),
        "subtasks": subtasks,
    });
    serde_json::to_string_pretty(&plan).unwrap_or_default()
}

/// `tip splitter: bill & tip` → `TipSplitterBillTip` (a component's name).
fn pascal(text: &str) -> String {
    let mut out: String = slug(text)
        .trim_start_matches("part_")
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_uppercase()) {
        out.insert_str(0, "Screen");
    }
    out
}

/// The message the generated program prints.
fn message_for(sub: &Subtask) -> String {
    if sub.title.to_lowercase().contains("hello") {
        "Hello, world!".to_string()
    } else {
        sub.title.replace(['"', '\\', '`', '$', '\''], "")
    }
}

fn write_code(sub: &Subtask, issues: &str) -> String {
    let msg = message_for(sub);
    let note = if issues.trim().is_empty() || issues.trim() == "none" {
        String::new()
    } else {
        let first = issues
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("- ")
            .replace(['"', '\''], "");
        format!(
            " Revised for: {}.",
            first.chars().take(80).collect::<String>()
        )
    };
    let title = sub.title.replace(['"', '\\', '\''], "");
    match sub.language.as_str() {
        "typescript" if sub.filename.ends_with(".tsx") => {
            let name = sub.component();
            format!(
                "// {title}: written by ecca's offline model (simulated).{note}\nimport {{ StyleSheet, Text, View }} from \"react-native\";\n\nexport function headline(): string {{\n  return \"{msg}\";\n}}\n\nexport function {name}() {{\n  return (\n    <View style={{styles.card}}>\n      <Text style={{styles.title}}>{{headline()}}</Text>\n    </View>\n  );\n}}\n\nconst styles = StyleSheet.create({{\n  card: {{ padding: 16, borderRadius: 12, backgroundColor: \"#f4f4f5\" }},\n  title: {{ fontSize: 18 }},\n}});\n"
            )
        }
        "typescript" => format!(
            "// {title}: written by ecca's offline model (simulated).{note}\n\nexport function main(): string {{\n  const message = \"{msg}\";\n  console.log(message);\n  return message;\n}}\n\nif (require.main === module) {{\n  main();\n}}\n"
        ),
        "javascript" => format!(
            "// {title}: written by ecca's offline model (simulated).{note}\n\nfunction main() {{\n  const message = \"{msg}\";\n  console.log(message);\n  return message;\n}}\n\nmodule.exports = {{ main }};\n\nif (require.main === module) {{\n  main();\n}}\n"
        ),
        "bash" => format!(
            "#!/usr/bin/env bash\n# {title}: written by ecca's offline model (simulated).{note}\nset -euo pipefail\n\necho \"{msg}\"\n"
        ),
        _ => format!(
            "\"\"\"{title}: written by ecca's offline model (simulated).{note}\"\"\"\n\n\ndef main() -> str:\n    message = \"{msg}\"\n    print(message)\n    return message\n\n\nif __name__ == \"__main__\":\n    main()\n"
        ),
    }
}

fn write_tests(sub: &Subtask) -> String {
    let msg = message_for(sub);
    let module = sub.module();
    let base = module.rsplit('/').next().unwrap_or(module);
    match sub.language.as_str() {
        "typescript" if sub.filename.ends_with(".tsx") => {
            let name = sub.component();
            format!(
                "// Tests for {name} (simulated).\nimport {{ test }} from \"node:test\";\nimport assert from \"node:assert/strict\";\nimport {{ isValidElement }} from \"react\";\nimport {{ {name}, headline }} from \"./{base}\";\n\ntest(\"the headline says what the screen is for\", () => {{\n  assert.equal(headline(), \"{msg}\");\n}});\n\ntest(\"the component renders an element\", () => {{\n  assert.ok(isValidElement({name}()));\n}});\n"
            )
        }
        "typescript" => format!(
            "// Tests for {module} (simulated).\nimport {{ test }} from \"node:test\";\nimport assert from \"node:assert/strict\";\nimport {{ main }} from \"./{base}\";\n\ntest(\"main returns its message\", () => {{\n  assert.equal(main(), \"{msg}\");\n}});\n"
        ),
        "javascript" => format!(
            "// Tests for {module} (simulated).\nconst assert = require(\"assert\");\nconst {{ main }} = require(\"./{module}\");\n\nassert.strictEqual(main(), \"{msg}\");\nconsole.log(\"1 passed, 0 failed\");\n"
        ),
        "bash" => format!(
            "#!/usr/bin/env bash\n# Tests for {module} (simulated).\nset -euo pipefail\n[ \"$(bash ./{})\" = \"{msg}\" ] && echo \"1 passed, 0 failed\"\n",
            sub.filename
        ),
        _ => format!(
            "\"\"\"Tests for {module} (simulated).\"\"\"\nimport unittest\n\nfrom {module} import main\n\n\nclass MainTest(unittest.TestCase):\n    def test_main_returns_its_message(self):\n        self.assertEqual(main(), \"{msg}\")\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n"
        ),
    }
}

/// One JSON array with the code of every subtask listed in the prompt.
fn write_batch(prompt: &str) -> String {
    let listed: Vec<Value> = prompt_section(prompt, "Subtasks")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let items: Vec<Value> = listed
        .iter()
        .map(|s| {
            let get = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let language = if get("language").is_empty() {
                "python".to_string()
            } else {
                get("language")
            };
            let sub = Subtask {
                title: get("title"),
                filename: get("filename"),
                language,
            };
            json!({"filename": sub.filename, "code": write_code(&sub, "")})
        })
        .collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

/// Scores the evidence: 9 when everything was checked and passed, lower for failures,
/// and at most 7 when a check could not run, naming what was not verified.
fn evaluate(evidence: &str) -> String {
    let mut score: i64 = 9;
    let mut issues: Vec<String> = Vec::new();
    for line in evidence.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (what, verdict) = line.split_once(':').unwrap_or((line, ""));
        let verdict = verdict.trim();
        if verdict.starts_with("failed") {
            score -= 3;
            issues.push(format!(
                "{what} failed: {}",
                verdict
                    .trim_start_matches("failed")
                    .trim_start_matches([' ', '-', '—'])
            ));
        } else if verdict.starts_with("skipped") {
            score = score.min(7);
            issues.push(format!("{what} not verified ({verdict})"));
        } else if verdict.starts_with("problems") {
            score -= 1;
            issues.push(format!("{what}: {verdict}"));
        }
    }
    let score = score.clamp(0, 10);
    json!({"score": score, "issues": issues, "simulated": true}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(purpose: Purpose, prompt: &str) -> ModelRequest {
        ModelRequest {
            model: "claude-sonnet-4-5".into(),
            purpose,
            system: String::new(),
            prompt: prompt.into(),
            max_tokens: 4096,
        }
    }

    #[test]
    fn hello_world_is_real_python() {
        let out = answer(&req(
            Purpose::Write,
            "## Subtask\ntitle: Write a Python hello world\nlanguage: python\nfilename: main.py\n",
        ));
        assert!(out.starts_with("```python\n"));
        assert!(
            out.contains("print(message)") && out.contains("Hello, world!"),
            "{out}"
        );
    }

    #[test]
    fn bullets_become_subtasks() {
        let out = answer(&req(
            Purpose::Plan,
            "## Task\ntitle: tools\nstack: python\n\n## Description\n- parse args\n- 2nd step\n",
        ));
        let v: Value = serde_json::from_str(&out).unwrap();
        let subs = v["subtasks"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0]["filename"], "parse_args.py");
        assert_eq!(subs[1]["filename"], "part_2nd_step.py");
    }

    #[test]
    fn evaluation_follows_evidence() {
        let v: Value =
            serde_json::from_str(&evaluate("lint: ok\nexecution: passed\ntests: passed")).unwrap();
        assert_eq!(v["score"], 9);
        let v: Value =
            serde_json::from_str(&evaluate("lint: skipped (no linter)\ntests: failed 1 of 2"))
                .unwrap();
        assert_eq!(v["score"], 4);
        assert_eq!(v["issues"].as_array().unwrap().len(), 2);
    }
}
