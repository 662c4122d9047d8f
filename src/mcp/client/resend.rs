//! Which calls may be sent again when a connection broke before their answer, and what an
//! operator should look at when one may or may not have run. Sending a call twice is only
//! harmless when the tool says it only reads or is idempotent; without such word, a tool is
//! taken to change something.

use rmcp::model::Tool;

/// ecca's own tools that change something: what to check before calling one again, and,
/// for a tool that carries no annotation, a name that is never sent twice.
const CHANGES: &[(&str, &str)] = &[
    (
        "commit",
        "look at the branch's last commit in the client's clone before committing again",
    ),
    (
        "push",
        "look at the branch on the client's repository before pushing again",
    ),
    (
        "open_pr",
        "look at the repository's open pull requests before opening another",
    ),
    (
        "clone",
        "look at the clone in the client-github server's work directory before cloning again",
    ),
    (
        "create_file",
        "look whether the file exists and what it holds before creating it again",
    ),
    (
        "apply_diff",
        "look at the files the diff touches before applying it again",
    ),
    (
        "refactor",
        "look at the files the rename touches before running it again",
    ),
    (
        "store_snippet",
        "search the client's snippets for it before storing it again",
    ),
];

/// ecca's own tools that only read: the fallback for a server that says it is one of ecca's
/// but does not annotate its tools (an older ecca).
const READS: &[&str] = &[
    "list_files",
    "read_file",
    "search_code",
    "get_structure",
    "generate_diff",
    "search_similar",
    "get_pattern",
    "lint_python",
    "lint_js",
    "fix_lint",
];

/// Whether sending `tool` again after a cut can only repeat a read or an idempotent change.
/// The tool's own annotation decides first; ecca's names are the fallback for a tool that
/// carries none.
pub(super) fn may_resend(tool: &str, listed: Option<&Tool>, ecca_server: bool) -> bool {
    if let Some(said) = listed.and_then(|t| t.annotations.as_ref()) {
        return said.read_only_hint == Some(true) || said.idempotent_hint == Some(true);
    }
    if runs_code(tool) || CHANGES.iter().any(|(name, _)| *name == tool) {
        return false;
    }
    ecca_server && READS.contains(&tool)
}

/// What to look at before calling `tool` again.
pub(super) fn what_to_check(tool: &str) -> String {
    if runs_code(tool) {
        return "the code ran, if at all, in a throwaway sandbox; run it again only if \
                running it twice is harmless"
            .into();
    }
    CHANGES
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, check)| check.to_string())
        .unwrap_or_else(|| {
            format!("look at what {tool} changes on the server before calling it again")
        })
}

fn runs_code(tool: &str) -> bool {
    tool.starts_with("run_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ToolAnnotations;
    use std::sync::Arc;

    fn tool(name: &str, annotations: Option<ToolAnnotations>) -> Tool {
        let mut t = Tool::new(name.to_string(), "", Arc::new(serde_json::Map::new()));
        t.annotations = annotations;
        t
    }

    #[test]
    fn only_reads_and_idempotent_tools_are_sent_again() {
        let read_only = Some(ToolAnnotations::new().read_only(true));
        let idempotent = Some(ToolAnnotations::new().idempotent(true));
        assert!(may_resend(
            "peek",
            Some(&tool("peek", read_only.clone())),
            false
        ));
        assert!(may_resend("put", Some(&tool("put", idempotent)), false));
        assert!(!may_resend("put", Some(&tool("put", None)), false));
        assert!(!may_resend("anything", None, false));
        // An annotation decides before any name: a read-only commit is a read.
        assert!(may_resend(
            "commit",
            Some(&tool("commit", read_only.clone())),
            false
        ));
        let changes = Some(ToolAnnotations::new().read_only(false).idempotent(false));
        assert!(!may_resend(
            "read_file",
            Some(&tool("read_file", changes)),
            true
        ));
        // Without one, ecca's names that change something or run code are never re-sent.
        assert!(!may_resend("commit", Some(&tool("commit", None)), true));
        assert!(!may_resend("run_bash", Some(&tool("run_bash", None)), true));
        // ecca's read-only tools, when the server is ecca's.
        assert!(may_resend("read_file", None, true));
        assert!(!may_resend("read_file", None, false));
        assert!(what_to_check("push").contains("branch"));
    }
}
