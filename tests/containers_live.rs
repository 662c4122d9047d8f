//! The Containers view against a real Docker engine, as an operator uses it: the real
//! binary in a pseudo-terminal starts two of ecca's servers and a third-party one (built
//! here from the Python MCP SDK, installed from PyPI into an image assembled like ecca's
//! own), sees them healthy, sees one stopped from outside, restarts it, follows and searches
//! its logs and removes it after a confirmation; the third-party container's hardening is
//! read back with `docker inspect`. Then the compose file, run by docker-compose, brings the
//! five shared servers up and the view lists them by service.

mod common;

use common::pty::start_console;
use common::{ecca_command, require_docker_and_sandbox};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Both tests list every managed container: one at a time.
static DOCKER: Mutex<()> = Mutex::new(());

const SDK_PINS: &[&str] = &["mcp==1.12.4", "pydantic==2.11.7"];
const THIRD_PARTY_IMAGE: &str = "ecca-test-acme-tools:1";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(args: &[&str]) -> Command {
    let mut c = Command::new("docker");
    c.args(args);
    c
}

/// The Python MCP SDK for Debian's python3 (the sandbox image's), installed once into a
/// cache from PyPI.
fn python_sdk() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = Path::new(&home)
        .join(".cache/ecca")
        .join(format!("test-mcp-sdk-{}", SDK_PINS.join("-")));
    if dir.join("mcp").exists() {
        return dir;
    }
    let tmp = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut pip = Command::new("/usr/bin/python3");
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .args(["--only-binary=:all:", "--target"])
    .arg(&tmp)
    .args(SDK_PINS);
    run(&mut pip);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let _ = std::fs::rename(&tmp, &dir);
    let _ = std::fs::remove_dir_all(&tmp);
    dir
}

/// A third-party MCP server image: FastMCP over Streamable HTTP with two tools, on the
/// sandbox image's python3, with the SDK and the libraries its extensions load.
fn third_party_image() {
    let sdk = python_sdk();
    let ctx = tempfile::tempdir().unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(&sdk)
        .arg(ctx.path().join("sdk")));
    let libs = ctx.path().join("libs");
    std::fs::create_dir_all(&libs).unwrap();
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "find {} -name '*.so' -exec ldd {{}} \\; | awk '/=>/ {{print $3}}' | sort -u",
        sdk.display()
    )));
    for lib in out.lines().filter(|l| l.starts_with('/')) {
        let name = Path::new(lib).file_name().unwrap();
        std::fs::copy(lib, libs.join(name)).unwrap();
    }
    std::fs::write(
        ctx.path().join("server.py"),
        r#"import os
from mcp.server.fastmcp import FastMCP
app = FastMCP("acme-tools", host="0.0.0.0", port=int(os.environ["PORT"]))
@app.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b
@app.tool()
def token_is_set() -> bool:
    """Whether the secret arrived."""
    return bool(os.environ.get("ACME_TOKEN"))
print("acme-tools starting", flush=True)
app.run(transport="streamable-http")
"#,
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM ecca-sandbox:latest\nCOPY sdk /opt/sdk\nCOPY libs /opt/sdk-libs\nCOPY server.py /opt/server.py\n\
         ENV PYTHONPATH=/opt/sdk PYTHONDONTWRITEBYTECODE=1 LD_LIBRARY_PATH=/opt/sdk-libs\n\
         ENTRYPOINT [\"/usr/bin/python3\", \"/opt/server.py\"]\n",
    )
    .unwrap();
    run(docker(&["build", "-q", "-t", THIRD_PARTY_IMAGE]).arg(ctx.path()));
}

/// Removes the containers a test made, also when it fails.
struct Remove(Vec<&'static str>);

impl Drop for Remove {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker(&["rm", "-f", name]).output();
        }
    }
}

fn inspect(name: &str) -> Value {
    let out = run(&mut docker(&["inspect", name]));
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

#[test]
fn the_console_starts_watches_restarts_and_removes_servers() {
    let _one = DOCKER.lock().unwrap_or_else(|p| p.into_inner());
    require_docker_and_sandbox();
    let names = vec!["ecca-acme-tools", "ecca-code-context", "ecca-linter"];
    drop(Remove(names.clone()));
    let _cleanup = Remove(names);
    third_party_image();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    std::fs::write(
        dir.join("mcp_servers.json"),
        format!(
            r#"{{
  "acme-tools": {{"image": "{THIRD_PARTY_IMAGE}", "port": 9000, "memory_mib": 256,
                  "env": {{"PORT": "9000", "ACME_TOKEN": "secret:acme-token"}}}},
  "code-context": {{"image": "ecca-mcp:latest", "port": 18100}},
  "linter": {{"image": "ecca-mcp:latest", "port": 18104}}
}}"#
        ),
    )
    .unwrap();
    let stored = ecca_command(dir)
        .args([
            "containers",
            "secret",
            "acme-token",
            "--from-env",
            "ACME_TOKEN_VALUE",
        ])
        .env("ACME_TOKEN_VALUE", "tok-acme-5f3e1c")
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );

    let dir_str = dir.to_str().unwrap();
    let mut console = start_console(&["--data-dir", dir_str], &[], 160, 48);
    let screen = &mut console.screen;
    screen.wait_for("No runs yet", 60);
    screen.keys(b"5");
    screen.wait_for("Containers ·", 60);
    // The picker lists the registry by name: acme-tools, code-context, linter.
    for downs in 0..3 {
        screen.keys(b"a");
        screen.wait_for("Start a server", 60);
        for _ in 0..downs {
            screen.keys(b"j");
        }
        screen.keys(b"\r");
    }
    for server in ["acme-tools", "code-context", "linter"] {
        screen.wait_for_line(&[server, "running", "healthy"], &["unhealthy"], 120);
    }

    // The third-party server runs hardened, its secret in its environment only.
    let acme = inspect("ecca-acme-tools");
    let host = &acme["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}");
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["Memory"], 256 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 1_000_000_000i64);
    assert_eq!(host["PidsLimit"], 128);
    assert_eq!(host["NetworkMode"], "ecca-isolated");
    assert!(host["Tmpfs"]["/tmp"].is_string(), "{host}");
    assert!(
        host["PortBindings"]
            .as_object()
            .is_none_or(|p| p.is_empty()),
        "published: {host}"
    );
    assert_eq!(acme["Config"]["Labels"]["ecca.managed"], "true");
    let env: Vec<&str> = acme["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"ACME_TOKEN=tok-acme-5f3e1c"), "{env:?}");
    let network = run(&mut docker(&["network", "inspect", "ecca-isolated"]));
    let network: Value = serde_json::from_str(&network).unwrap();
    assert_eq!(network[0]["Internal"], true, "no egress: {network}");
    assert!(
        !screen.text().contains("tok-acme-5f3e1c"),
        "the secret is never shown"
    );

    // Stopped from outside: the view follows Docker's events.
    let stopped_at = Instant::now();
    run(&mut docker(&["stop", "-t", "1", "ecca-linter"]));
    let stop_returned = stopped_at.elapsed();
    screen.wait_for_line(&["ecca-linter", "exited"], &[], 60);
    eprintln!(
        "docker stop returned after {:?}; the view showed it {:?} after the stop began",
        stop_returned,
        stopped_at.elapsed()
    );

    // Restart it from the view: select it, then r.
    for _ in 0..8 {
        if screen.text().contains("linter ecca-mcp:latest") {
            break;
        }
        screen.keys(b"j");
        std::thread::sleep(Duration::from_millis(100));
    }
    screen.wait_for("linter ecca-mcp:latest", 30);
    screen.keys(b"r");
    screen.wait_for_line(&["ecca-linter", "running", "healthy"], &[], 120);

    // Its logs, followed and searched.
    screen.keys(b"\t");
    screen.wait_for("logs of ecca-linter", 30);
    screen.wait_for("linter listening on http://0.0.0.0:8104/mcp", 60);
    screen.keys(b"/listening\r");
    screen.wait_for("/listening (2 matching)", 60);

    // Removed, after a confirmation.
    screen.keys(b"D");
    screen.wait_for("Remove ecca-linter?", 30);
    screen.keys(b"y");
    screen.wait_for("ecca-linter removed", 60);
    screen.wait_until(
        "ecca-linter gone from the list",
        60,
        |_| None,
        |text| !text.lines().any(|l| l.starts_with("│linter ")),
    );
    let gone = docker(&["inspect", "ecca-linter"]).output().unwrap();
    assert!(!gone.status.success(), "ecca-linter still exists");
    screen.keys(b"q");
    console.wait_exit(60);

    // Headless parity: the same containers, as JSON.
    let out = ecca_command(dir)
        .args(["containers", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = listed["containers"].as_array().unwrap();
    let acme = rows
        .iter()
        .find(|r| r["name"] == "ecca-acme-tools")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(acme["health"]["health"], "healthy", "{acme}");
    assert_eq!(acme["health"]["tools"], 2);
    assert!(!rows.iter().any(|r| r["name"] == "ecca-linter"));
}

fn compose(project: &str, work: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("docker-compose");
    c.args(["-p", project, "-f"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("compose/compose.yaml"))
        .args(args)
        .env("PROJECT", work);
    c
}

struct ComposeDown(&'static str, PathBuf);

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let _ = compose(self.0, &self.1, &["down", "-v", "--remove-orphans"]).output();
    }
}

#[test]
fn compose_brings_the_five_servers_up_and_the_console_lists_them() {
    let _one = DOCKER.lock().unwrap_or_else(|p| p.into_inner());
    require_docker_and_sandbox();
    assert!(
        Command::new("docker-compose")
            .arg("version")
            .output()
            .is_ok(),
        "this test needs docker-compose; scripts/test.sh installs Debian's package"
    );
    let project = "ecca-compose-test";
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("app.py"), "print('hello')\n").unwrap();
    drop(ComposeDown(project, work.path().to_path_buf()));
    let _down = ComposeDown(project, work.path().to_path_buf());
    run(&mut compose(project, work.path(), &["up", "-d"]));

    let home = tempfile::tempdir().unwrap();
    let services = [
        "code-assistant",
        "code-context",
        "code-execution",
        "linter",
        "vector-code",
    ];
    let mut console = start_console(&["--data-dir", home.path().to_str().unwrap()], &[], 160, 48);
    let screen = &mut console.screen;
    screen.wait_for("No runs yet", 60);
    screen.keys(b"5");
    for service in services {
        screen.wait_for_line(
            &[service, &format!("{project}_"), "running", "healthy"],
            &["unhealthy"],
            120,
        );
    }
    // Restart one from the view: code-assistant sorts first.
    screen.keys(b"k");
    screen.wait_for("code-assistant ecca-mcp:latest", 30);
    let before = inspect(&format!("{project}_code-assistant_1"))["State"]["StartedAt"].clone();
    screen.keys(b"r");
    common::wait_until("code-assistant restarted", 120, || {
        inspect(&format!("{project}_code-assistant_1"))["State"]["StartedAt"] != before
    });
    screen.wait_for_line(&["code-assistant", "running", "healthy"], &[], 120);
    screen.keys(b"q");
    console.wait_exit(60);

    run(&mut compose(project, work.path(), &["down", "-v"]));
    let left = run(&mut docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]));
    assert!(left.trim().is_empty(), "left after down: {left}");
}
