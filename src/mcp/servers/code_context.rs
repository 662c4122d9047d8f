//! `code-context`: read-only access to a project: list_files, read_file, search_code
//! (regex, respecting .gitignore) and get_structure. Confined to its root.

use super::confine::Root;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ServerConfig;
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

/// Files larger than this are cut, with a marker saying how much was left out.
pub const READ_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct CodeContext {
    root: Root,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListFilesArgs {
    /// Directory to list, relative to the root (default: the root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only files whose path contains this text (e.g. ".py").
    #[serde(default)]
    pub contains: Option<String>,
    /// At most this many files (default 1000).
    #[serde(default)]
    pub max: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileList {
    pub files: Vec<FileEntry>,
    pub truncated: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReadFileArgs {
    /// File to read, relative to the root.
    pub path: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub bytes: u64,
    pub truncated: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// A regular expression (Rust syntax).
    pub pattern: String,
    /// Directory to search, relative to the root (default: the root).
    #[serde(default)]
    pub path: Option<String>,
    /// At most this many matches (default 200).
    #[serde(default)]
    pub max_results: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchMatch {
    pub path: String,
    pub line: u32,
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    pub truncated: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StructureArgs {
    /// Directory to describe, relative to the root (default: the root).
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileStructure {
    pub path: String,
    pub language: String,
    pub lines: u32,
    /// Top-level functions, classes and exports.
    pub symbols: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Structure {
    /// An indented tree of the files.
    pub tree: String,
    pub files: Vec<FileStructure>,
}

impl CodeContext {
    pub fn new(root: Root) -> Self {
        CodeContext {
            root,
            tool_router: Self::tool_router(),
        }
    }

    /// Files under `dir`, honouring .gitignore and skipping hidden entries and .git. The
    /// walk goes through the root's handle and follows no link (see [`Root::files`]), so
    /// a folder swapped for a link mid-walk cannot bring in names from outside.
    fn walk(&self, dir: Option<&str>) -> Result<super::confine::Files, String> {
        self.root.files(dir.unwrap_or(""))
    }
}

pub fn language_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("py") => "python",
        Some("ts" | "tsx") => "typescript",
        Some("js" | "jsx" | "mjs" | "cjs") => "javascript",
        Some("rs") => "rust",
        Some("sh" | "bash") => "bash",
        Some("go") => "go",
        Some("md") => "markdown",
        Some("json") => "json",
        Some("toml") => "toml",
        Some("yml" | "yaml") => "yaml",
        _ => "other",
    }
}

/// Top-level symbols by the conventions of each language (no parser: a quick outline).
fn symbols(language: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let name = |rest: &str| {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
                .to_string()
        };
        let sym = match language {
            "python" => line
                .strip_prefix("def ")
                .or_else(|| line.strip_prefix("async def "))
                .map(|r| format!("def {}", name(r)))
                .or_else(|| {
                    line.strip_prefix("class ")
                        .map(|r| format!("class {}", name(r)))
                }),
            "javascript" | "typescript" => {
                let l = line.strip_prefix("export ").unwrap_or(line);
                let l = l.strip_prefix("default ").unwrap_or(l);
                let l = l.strip_prefix("async ").unwrap_or(l);
                l.strip_prefix("function ")
                    .map(|r| format!("function {}", name(r)))
                    .or_else(|| {
                        l.strip_prefix("class ")
                            .map(|r| format!("class {}", name(r)))
                    })
                    .or_else(|| {
                        l.strip_prefix("const ")
                            .map(|r| format!("const {}", name(r)))
                    })
                    .or_else(|| {
                        l.strip_prefix("interface ")
                            .map(|r| format!("interface {}", name(r)))
                    })
            }
            "rust" => {
                let l = line.strip_prefix("pub ").unwrap_or(line);
                ["fn ", "struct ", "enum ", "trait ", "mod "]
                    .iter()
                    .find_map(|k| l.strip_prefix(k).map(|r| format!("{}{}", k, name(r))))
            }
            "bash" => line
                .strip_suffix("() {")
                .map(|n| format!("function {}", n.trim_start_matches("function ").trim())),
            _ => None,
        };
        if let Some(s) = sym.filter(|s| !s.ends_with(' ')) {
            out.push(s);
        }
    }
    out
}

#[tool_router]
impl CodeContext {
    #[tool(
        description = "List the files under a directory of the project (respects .gitignore).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn list_files(
        &self,
        Parameters(args): Parameters<ListFilesArgs>,
    ) -> Result<Json<FileList>, String> {
        let listed = self.walk(args.path.as_deref())?;
        let max = args.max.unwrap_or(1000).clamp(1, 100_000) as usize;
        let mut files = Vec::new();
        let mut truncated = false;
        for f in listed {
            if args
                .contains
                .as_deref()
                .is_some_and(|c| !f.path.contains(c))
            {
                continue;
            }
            if files.len() == max {
                truncated = true;
                break;
            }
            files.push(FileEntry {
                path: f.path,
                bytes: f.bytes,
            });
        }
        Ok(Json(FileList { files, truncated }))
    }

    #[tool(
        description = "Read a file of the project. Files over 256 KiB are cut, with a marker.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<Json<FileContent>, String> {
        let bytes = self.root.read(&args.path)?;
        let total = bytes.len();
        let truncated = total > READ_LIMIT;
        let mut end = total.min(READ_LIMIT);
        while end > 0 && end < total && (bytes[end] & 0xC0) == 0x80 {
            end -= 1; // do not cut a UTF-8 character in half
        }
        let mut content = String::from_utf8_lossy(&bytes[..end]).into_owned();
        if truncated {
            content.push_str(&format!(
                "\n[… cut by ecca: {} more bytes not shown …]\n",
                total - end
            ));
        }
        Ok(Json(FileContent {
            path: Root::normal(&args.path)?,
            content,
            bytes: total as u64,
            truncated,
        }))
    }

    #[tool(
        description = "Search the project's files with a regular expression (respects .gitignore).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn search_code(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<Json<SearchResult>, String> {
        let re = regex::Regex::new(&args.pattern)
            .map_err(|e| format!("the pattern is not a valid regular expression: {e}"))?;
        let listed = self.walk(args.path.as_deref())?;
        let max = args.max_results.unwrap_or(200).clamp(1, 10_000) as usize;
        let mut matches = Vec::new();
        for f in listed {
            let rel = f.path;
            let Ok(Ok(text)) = self.root.read(&rel).map(String::from_utf8) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if matches.len() == max {
                        return Ok(Json(SearchResult {
                            matches,
                            truncated: true,
                        }));
                    }
                    matches.push(SearchMatch {
                        path: rel.clone(),
                        line: i as u32 + 1,
                        text: line.chars().take(400).collect(),
                    });
                }
            }
        }
        Ok(Json(SearchResult {
            matches,
            truncated: false,
        }))
    }

    #[tool(
        description = "Describe the project: a tree of files with language, line count and top-level symbols.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn get_structure(
        &self,
        Parameters(args): Parameters<StructureArgs>,
    ) -> Result<Json<Structure>, String> {
        let listed = self.walk(args.path.as_deref())?;
        let mut files = Vec::new();
        let mut tree = String::new();
        for f in listed.take(5_000) {
            let rel = f.path;
            let language = language_of(&rel);
            // Read through the root handle: the walk's path could have been swapped for
            // a link since it was listed.
            let text = self
                .root
                .read(&rel)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let depth = rel.matches('/').count();
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            tree.push_str(&format!("{}{name}\n", "  ".repeat(depth)));
            files.push(FileStructure {
                lines: text.lines().count() as u32,
                symbols: symbols(language, &text),
                language: language.into(),
                path: rel,
            });
        }
        Ok(Json(Structure { tree, files }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeContext {
    fn get_info(&self) -> ServerConfig {
        super::server_info("code-context", None)
    }
}
