//! `code-assistant`: changes to a project as diffs: generate_diff, apply_diff (every file
//! validated before anything is written; all files or none), create_file and refactor
//! (rename a symbol across files, returning the diff). Confined to its root.

use super::code_context::CodeContext;
use super::confine::{Change, Root, WriteMode};
use super::fail;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Clone)]
pub struct CodeAssistant {
    root: Root,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GenerateDiffArgs {
    /// The file's path, used in the diff headers.
    pub path: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diff {
    pub diff: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ApplyDiffArgs {
    /// A unified diff of one or more files (`--- a/x` / `+++ b/x` headers).
    pub diff: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangedFile {
    pub path: String,
    /// `modified`, `created` or `deleted`.
    pub action: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applied {
    pub files: Vec<ChangedFile>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateFileArgs {
    pub path: String,
    pub content: String,
    /// Replace an existing file (default false: an existing file is refused).
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Created {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RefactorArgs {
    /// The identifier to rename.
    pub old_name: String,
    pub new_name: String,
    /// Directory to work in, relative to the root (default: the root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only compute the diff; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refactored {
    pub diff: String,
    pub files_changed: Vec<String>,
    pub applied: bool,
}

/// One file's part of a unified diff.
struct FilePart<'a> {
    old_path: Option<String>,
    new_path: Option<String>,
    text: &'a str,
}

fn header_path(line: &str, prefix: &str) -> Option<String> {
    let raw = line.strip_prefix(prefix)?.split('\t').next()?.trim();
    if raw == "/dev/null" {
        return None;
    }
    Some(
        raw.strip_prefix("a/")
            .or_else(|| raw.strip_prefix("b/"))
            .unwrap_or(raw)
            .to_string(),
    )
}

/// Splits a multi-file unified diff at its `--- ` / `+++ ` header pairs.
fn split_files(diff: &str) -> Result<Vec<FilePart<'_>>, String> {
    let mut starts = Vec::new();
    let mut offset = 0;
    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("--- ") && lines.get(i + 1).is_some_and(|n| n.starts_with("+++ ")) {
            starts.push((offset, i));
        }
        offset += line.len();
    }
    if starts.is_empty() {
        return Err(
            "the diff has no file headers (--- a/FILE and +++ b/FILE lines); send a unified diff"
                .into(),
        );
    }
    let mut parts = Vec::new();
    for (k, (start, line_no)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|(o, _)| *o).unwrap_or(diff.len());
        let old_path = header_path(lines[*line_no].trim_end(), "--- ");
        let new_path = header_path(lines[line_no + 1].trim_end(), "+++ ");
        if old_path.is_none() && new_path.is_none() {
            return Err("a diff part names /dev/null on both sides".into());
        }
        parts.push(FilePart {
            old_path,
            new_path,
            text: &diff[*start..end],
        });
    }
    Ok(parts)
}

fn unified(path: &str, old: &str, new: &str) -> String {
    let mut opts = diffy::DiffOptions::new();
    opts.set_original_filename(format!("a/{path}"));
    opts.set_modified_filename(format!("b/{path}"));
    opts.create_patch(old, new).to_string()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl CodeAssistant {
    /// A server for `root`; the leftovers of a server killed mid-write there go first.
    pub fn new(root: Root) -> Self {
        root.remove_leftovers();
        CodeAssistant {
            root,
            tool_router: Self::tool_router(),
        }
    }

    /// Every change of a diff, computed and checked against the files as they are;
    /// nothing is written here. A file named twice is refused: its sections would each
    /// be computed from the same old content, and one would silently undo the other.
    fn plan(&self, diff: &str) -> Result<(Vec<Change>, Vec<ChangedFile>), String> {
        let mut changes = Vec::new();
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        for part in split_files(diff)? {
            let shown = part
                .new_path
                .clone()
                .or(part.old_path.clone())
                .unwrap_or_default();
            let patch = diffy::Patch::from_str(part.text)
                .map_err(|e| format!("the diff for {shown} is malformed: {e}"))?;
            let (path, base, action) = match (&part.old_path, &part.new_path) {
                (None, Some(new)) => (Root::normal(new)?, String::new(), "created"),
                (Some(old), Some(new)) if Root::normal(old)? != Root::normal(new)? => {
                    // Applying the hunks to the old file alone would drop the new name.
                    return Err(format!(
                        "the diff renames {old} to {new}, and renames are not applied; send \
                         the removal of {old} (+++ /dev/null) and the creation of {new} \
                         (--- /dev/null) instead; nothing was changed"
                    ));
                }
                (Some(old), new) => {
                    let bytes = self.root.read(old)?;
                    let base = String::from_utf8(bytes).map_err(|_| {
                        format!("{old} is not UTF-8 text, so a diff cannot be applied to it")
                    })?;
                    let action = if new.is_none() { "deleted" } else { "modified" };
                    (Root::normal(old)?, base, action)
                }
                (None, None) => return Err("a diff part names no file".into()),
            };
            if !seen.insert(path.clone()) {
                return Err(format!(
                    "the diff names {path} more than once; put all of its hunks under one \
                     --- / +++ header; nothing was changed"
                ));
            }
            let result = diffy::apply(&base, &patch).map_err(|e| {
                format!("the diff does not apply to {shown}: {e}; nothing was changed")
            })?;
            changes.push(match action {
                "deleted" => Change::Delete { path: path.clone() },
                "created" => Change::Write {
                    path: path.clone(),
                    content: result.into_bytes(),
                    mode: WriteMode::Create,
                },
                _ => Change::Write {
                    path: path.clone(),
                    content: result.into_bytes(),
                    mode: WriteMode::Replace,
                },
            });
            files.push(ChangedFile {
                path,
                action: action.to_string(),
            });
        }
        Ok((changes, files))
    }
}

#[tool_router]
impl CodeAssistant {
    #[tool(
        description = "Make a unified diff from a file's old content to its new content.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn generate_diff(
        &self,
        Parameters(args): Parameters<GenerateDiffArgs>,
    ) -> Result<Json<Diff>, String> {
        Ok(Json(Diff {
            diff: unified(&args.path, &args.old, &args.new),
        }))
    }

    #[tool(
        description = "Apply a unified diff to the project. Every file is checked first; all files change or none.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn apply_diff(
        &self,
        Parameters(args): Parameters<ApplyDiffArgs>,
    ) -> Result<Json<Applied>, String> {
        let (changes, files) = self.plan(&args.diff)?;
        self.root.write_all(&changes)?;
        Ok(Json(Applied { files }))
    }

    #[tool(
        description = "Create a file in the project (an existing file is refused unless overwrite is true).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn create_file(
        &self,
        Parameters(args): Parameters<CreateFileArgs>,
    ) -> Result<Json<Created>, String> {
        self.root
            .write(&args.path, args.content.as_bytes(), args.overwrite)?;
        Ok(Json(Created {
            path: Root::normal(&args.path)?,
            bytes: args.content.len() as u64,
        }))
    }

    #[tool(
        description = "Rename an identifier across the project's files and return the diff.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    pub async fn refactor(
        &self,
        Parameters(args): Parameters<RefactorArgs>,
    ) -> Result<Json<Refactored>, String> {
        if !is_identifier(&args.old_name) || !is_identifier(&args.new_name) {
            return fail(
                "old_name and new_name must be identifiers (letters, digits and _, not starting with a digit)",
            );
        }
        let re = regex::Regex::new(&format!(r"\b{}\b", regex::escape(&args.old_name)))
            .map_err(|e| e.to_string())?;
        let context = CodeContext::new(self.root.clone());
        let listed = context
            .list_files(Parameters(super::code_context::ListFilesArgs {
                path: args.path.clone(),
                contains: None,
                max: Some(100_000),
            }))
            .await?;
        let mut diff = String::new();
        let mut changes = Vec::new();
        for f in listed.0.files {
            let Ok(old) = self.root.read(&f.path).map(String::from_utf8) else {
                continue;
            };
            let Ok(old) = old else {
                continue;
            };
            if !re.is_match(&old) {
                continue;
            }
            let new = re.replace_all(&old, args.new_name.as_str()).into_owned();
            diff.push_str(&unified(&f.path, &old, &new));
            changes.push(Change::Write {
                path: f.path,
                content: new.into_bytes(),
                mode: WriteMode::Replace,
            });
        }
        if !args.dry_run {
            self.root.write_all(&changes)?;
        }
        Ok(Json(Refactored {
            diff,
            files_changed: changes
                .into_iter()
                .filter_map(|c| match c {
                    Change::Write { path, .. } => Some(path),
                    Change::Delete { .. } => None,
                })
                .collect(),
            applied: !args.dry_run,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeAssistant {
    fn get_info(&self) -> ServerConfig {
        super::server_info("code-assistant", None)
    }
}
