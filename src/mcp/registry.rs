//! The registry of tool servers, `mcp_servers.json`: name → image, port, env,
//! capabilities. Any third-party MCP server with a Streamable HTTP endpoint can be added.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The registry's file name in the data dir.
pub const REGISTRY_FILE: &str = "mcp_servers.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// The container image that runs it (for the containers view and compose).
    #[serde(default)]
    pub image: Option<String>,
    pub port: u16,
    /// Host it listens on (default 127.0.0.1).
    #[serde(default)]
    pub host: Option<String>,
    /// The full endpoint, when it is not `http://HOST:PORT/mcp`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The tools it is expected to offer.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Hosts it may reach. Empty (the default): no egress at all, an internal network.
    /// Any entry gives the container the default bridge: egress is all or nothing, the
    /// list says why it was allowed.
    #[serde(default)]
    pub egress: Vec<String>,
    /// The container's command after the image's entrypoint (the image's own when empty).
    #[serde(default)]
    pub command: Vec<String>,
    /// Memory limit in MiB (default 512).
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// CPU limit in cores (default 1).
    #[serde(default)]
    pub cpus: Option<f64>,
}

impl ServerSpec {
    pub fn endpoint(&self) -> String {
        self.url.clone().unwrap_or_else(|| {
            format!(
                "http://{}:{}/mcp",
                self.host.as_deref().unwrap_or("127.0.0.1"),
                self.port
            )
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    #[serde(flatten)]
    pub servers: BTreeMap<String, ServerSpec>,
}

impl Registry {
    /// Reads a registry file, saying what is wrong with it in one sentence.
    pub fn load(path: &Path) -> Result<Registry, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("could not read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is malformed: {e}; fix it or remove it", path.display()))
    }

    /// The data dir's registry, or the five shared servers when it has none.
    pub fn of_data_dir(data_dir: &Path) -> Result<Registry, String> {
        let path = data_dir.join(REGISTRY_FILE);
        if path.exists() {
            Registry::load(&path)
        } else {
            Ok(Registry::defaults())
        }
    }

    /// The five shared servers at their default ports on this machine.
    pub fn defaults() -> Registry {
        let caps: &[(&str, &[&str])] = &[
            (
                "code-context",
                &["list_files", "read_file", "search_code", "get_structure"],
            ),
            (
                "code-assistant",
                &["generate_diff", "apply_diff", "create_file", "refactor"],
            ),
            (
                "code-execution",
                &["run_python", "run_node", "run_bash", "run_in_repo"],
            ),
            (
                "vector-code",
                &["store_snippet", "search_similar", "get_pattern"],
            ),
            ("linter", &["lint_python", "lint_js", "fix_lint"]),
        ];
        let servers = caps
            .iter()
            .map(|(name, tools)| {
                let port = super::servers::SERVERS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| *p)
                    .unwrap_or(0);
                let spec = ServerSpec {
                    image: Some(crate::containers::images::SERVER_IMAGE.into()),
                    port,
                    host: None,
                    url: None,
                    env: BTreeMap::new(),
                    capabilities: tools.iter().map(|t| t.to_string()).collect(),
                    egress: vec![],
                    command: vec![],
                    memory_mib: None,
                    cpus: None,
                };
                (name.to_string(), spec)
            })
            .collect();
        Registry { servers }
    }

    /// An endpoint for `name_or_url`: a URL as given, else a registered server's endpoint.
    pub fn resolve(&self, name_or_url: &str) -> Result<String, String> {
        if name_or_url.starts_with("http://") || name_or_url.starts_with("https://") {
            return Ok(name_or_url.to_string());
        }
        self.servers
            .get(name_or_url)
            .map(ServerSpec::endpoint)
            .ok_or_else(|| {
                let known: Vec<&str> = self.servers.keys().map(String::as_str).collect();
                format!(
                    "no server named {name_or_url} in the registry; known: {}, or give a URL",
                    known.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_reads_names_ports_and_urls() {
        let r: Registry = serde_json::from_str(
            r#"{"linter": {"image": "ecca-mcp:latest", "port": 8104, "capabilities": ["lint_python"]},
                "acme-tools": {"port": 9000, "url": "http://10.0.0.5:9000/mcp", "env": {"TOKEN_ENV": "X"}}}"#,
        )
        .unwrap();
        assert_eq!(r.resolve("linter").unwrap(), "http://127.0.0.1:8104/mcp");
        assert_eq!(r.resolve("acme-tools").unwrap(), "http://10.0.0.5:9000/mcp");
        assert!(
            r.resolve("nope")
                .unwrap_err()
                .contains("known: acme-tools, linter")
        );
        assert!(serde_json::from_str::<Registry>(r#"{"x": {"prot": 1}}"#).is_err());
        assert_eq!(Registry::defaults().servers.len(), 5);
    }
}
