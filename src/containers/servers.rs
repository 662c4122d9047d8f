//! What container a registry entry runs as: ecca's own servers in `ecca-mcp` with the
//! arguments compose gives them, a client's client-github with the data dir mounted (its
//! token is decrypted only inside it), any other entry as its image says, hardened alike.

use super::images::{SANDBOX_IMAGE, SERVER_IMAGE};
use super::launch::LaunchSpec;
use crate::mcp::registry::{Registry, ServerSpec};
use std::path::Path;

/// Prefix of the containers ecca names.
pub const NAME_PREFIX: &str = "ecca-";

const OWN_MEMORY: i64 = 512 * 1024 * 1024;

/// The container name of a registry server, or of a client's client-github.
pub fn container_name(server: &str, client: Option<&str>) -> String {
    match client {
        Some(c) => format!("{NAME_PREFIX}{server}-{c}"),
        None => format!("{NAME_PREFIX}{server}"),
    }
}

/// Where ecca's own servers listen inside their container.
fn own_port(server: &str) -> Option<u16> {
    crate::mcp::servers::SERVERS
        .iter()
        .find(|(n, _)| *n == server)
        .map(|(_, p)| *p)
}

/// Environment values `secret:NAME` replaced by the stored secret.
fn resolve_env(
    spec: &ServerSpec,
    secret: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<(String, String)>, String> {
    spec.env
        .iter()
        .map(|(k, v)| match v.strip_prefix("secret:") {
            Some(name) => secret(name).map(|s| (k.clone(), s)),
            None => Ok((k.clone(), v.clone())),
        })
        .collect()
}

/// The launch of `server` from the registry. `project` is the repository code-context and
/// code-assistant serve; `client` picks the client of a client-github instance.
pub fn launch_spec(
    server: &str,
    client: Option<&str>,
    registry: &Registry,
    data_dir: &Path,
    project: &Path,
    secret: &dyn Fn(&str) -> Result<String, String>,
) -> Result<LaunchSpec, String> {
    if server == "client-github" {
        let client = client.ok_or(
            "client-github serves one client; say which (`ecca containers start client-github --client ID`)",
        )?;
        let port = own_port(server).unwrap_or(8110);
        return Ok(LaunchSpec {
            server: server.into(),
            container_name: container_name(server, Some(client)),
            image: SERVER_IMAGE.into(),
            cmd: strings(&[
                "--data-dir",
                "/data",
                "mcp",
                "serve",
                "client-github",
                "--client",
                client,
                "--listen",
                &format!("0.0.0.0:{port}"),
            ]),
            port,
            // Several clients at once: the engine picks a free port on 127.0.0.1.
            publish: Some(0),
            env: vec![],
            binds: vec![(data_dir.display().to_string(), "/data".into(), false)],
            client: Some(client.into()),
            egress: true,
            memory_bytes: OWN_MEMORY,
            nano_cpus: 1_000_000_000,
            pids_limit: 256,
        });
    }
    let spec = registry.servers.get(server).ok_or_else(|| {
        let known: Vec<&str> = registry.servers.keys().map(String::as_str).collect();
        format!(
            "no server named {server} in the registry; known: {}",
            known.join(", ")
        )
    })?;
    let memory_bytes = spec
        .memory_mib
        .map(|m| i64::from(m) * 1024 * 1024)
        .unwrap_or(OWN_MEMORY);
    let nano_cpus = (spec.cpus.unwrap_or(1.0).clamp(0.1, 64.0) * 1e9) as i64;
    let env = resolve_env(spec, secret)?;
    if let Some(port) = own_port(server).filter(|_| spec.command.is_empty()) {
        let listen = format!("0.0.0.0:{port}");
        let project = project.display().to_string();
        let (mut cmd, binds): (Vec<String>, Vec<(String, String, bool)>) = match server {
            "code-context" => (
                strings(&[
                    "mcp", "serve", server, "--listen", &listen, "--root", "/project",
                ]),
                vec![(project, "/project".into(), true)],
            ),
            "code-assistant" => (
                strings(&[
                    "mcp", "serve", server, "--listen", &listen, "--root", "/project",
                ]),
                vec![(project, "/project".into(), false)],
            ),
            "code-execution" => (
                strings(&[
                    "mcp",
                    "serve",
                    server,
                    "--listen",
                    &listen,
                    "--image",
                    SANDBOX_IMAGE,
                ]),
                vec![(
                    "/var/run/docker.sock".into(),
                    "/var/run/docker.sock".into(),
                    false,
                )],
            ),
            "vector-code" => (
                strings(&["mcp", "serve", server, "--listen", &listen]),
                vec![("ecca-vectors".into(), "/data".into(), false)],
            ),
            _ => (
                strings(&["mcp", "serve", server, "--listen", &listen]),
                vec![],
            ),
        };
        // The root is read-only: a data dir on the tmpfs, or the vectors' volume.
        let data = if server == "vector-code" {
            "/data"
        } else {
            "/tmp/ecca"
        };
        cmd.splice(0..0, strings(&["--data-dir", data]));
        return Ok(LaunchSpec {
            server: server.into(),
            container_name: container_name(server, None),
            image: spec.image.clone().unwrap_or_else(|| SERVER_IMAGE.into()),
            cmd,
            port,
            publish: Some(spec.port),
            env,
            binds,
            client: None,
            // ecca's own servers are reached at their registry port on 127.0.0.1.
            egress: true,
            memory_bytes,
            nano_cpus,
            pids_limit: 256,
        });
    }
    let image = spec.image.clone().ok_or_else(|| {
        format!("the registry entry {server} has no image; add \"image\" to run it in a container")
    })?;
    let egress = !spec.egress.is_empty();
    Ok(LaunchSpec {
        server: server.into(),
        container_name: container_name(server, None),
        image,
        cmd: spec.command.clone(),
        port: spec.port,
        publish: egress.then_some(spec.port),
        env,
        binds: vec![],
        client: None,
        egress,
        memory_bytes,
        nano_cpus,
        pids_limit: 128,
    })
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_secret(name: &str) -> Result<String, String> {
        Err(format!("no secret {name}"))
    }

    #[test]
    fn a_third_party_server_gets_no_egress_and_its_secrets_decrypted() {
        let registry: Registry = serde_json::from_str(
            r#"{"acme-tools": {"image": "acme/tools:1", "port": 9000,
                "env": {"API_KEY": "secret:acme", "MODE": "fast"}, "memory_mib": 128}}"#,
        )
        .unwrap();
        let here = Path::new("/tmp");
        let spec = launch_spec("acme-tools", None, &registry, here, here, &|n| {
            Ok(format!("value-of-{n}"))
        })
        .unwrap();
        assert!(!spec.egress);
        assert_eq!(spec.publish, None);
        assert_eq!(spec.memory_bytes, 128 * 1024 * 1024);
        assert!(
            spec.env
                .contains(&("API_KEY".into(), "value-of-acme".into()))
        );
        let body = spec.body();
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("ecca-isolated"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        let err = launch_spec("acme-tools", None, &registry, here, here, &no_secret).unwrap_err();
        assert_eq!(err, "no secret acme");
    }

    #[test]
    fn ecca_servers_run_as_compose_runs_them() {
        let here = Path::new("/srv/repo");
        let spec = launch_spec(
            "linter",
            None,
            &Registry::defaults(),
            here,
            here,
            &no_secret,
        )
        .unwrap();
        assert_eq!(spec.container_name, "ecca-linter");
        assert_eq!(spec.publish, Some(8104));
        assert_eq!(
            spec.cmd,
            strings(&[
                "--data-dir",
                "/tmp/ecca",
                "mcp",
                "serve",
                "linter",
                "--listen",
                "0.0.0.0:8104"
            ])
        );
        let err = launch_spec(
            "client-github",
            None,
            &Registry::defaults(),
            here,
            here,
            &no_secret,
        )
        .unwrap_err();
        assert!(err.contains("--client ID"), "{err}");
        assert!(
            launch_spec("nope", None, &Registry::defaults(), here, here, &no_secret)
                .unwrap_err()
                .contains("known: code-assistant")
        );
    }
}
