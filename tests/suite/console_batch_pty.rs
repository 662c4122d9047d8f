//! The 21-app Rork example launched from the console, as an operator does it: the real
//! binary in a pseudo-terminal, the Batch view's path field completed with Tab, the
//! forecast read, the launch confirmed, the scoreboard followed until every app (linted and
//! tested for real in the sandbox) waits for approval; then the Clients view shows the
//! month the batch spent, and `ecca batch status` agrees.

use crate::common;

use common::ecca_command;
use common::pty::start_console;
use serde_json::Value;

const EXAMPLE: &str = include_str!("../../examples/rork-batch.toml");

#[test]
fn the_rork_example_is_forecast_launched_and_followed_in_the_console() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let out = ecca_command(dir)
        .args([
            "clients",
            "add",
            "rork",
            "--name",
            "Rork",
            "--budget-usd",
            "200",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("rork-batch.toml"), EXAMPLE).unwrap();
    let apps: Vec<&str> = EXAMPLE
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .skip(1) // the batch's own name
        .collect();
    assert_eq!(apps.len(), 21);

    let dir_str = dir.to_str().unwrap();
    let mut console = start_console(&["--data-dir", dir_str], &[], 160, 48);
    let screen = &mut console.screen;
    screen.wait_for("No runs yet. Press n to launch a task.", 60);
    screen.keys(b"4");
    screen.wait_for("Batch · open a manifest", 60);
    screen.keys(format!("{dir_str}/rork-b").as_bytes());
    screen.keys(b"\t");
    screen.wait_for("rork-batch.toml", 60);
    screen.keys(b"\r");
    let forecast = screen.wait_for("no history: estimate from the price table only", 60);
    for app in &apps {
        assert!(forecast.contains(app), "{app} in the forecast:\n{forecast}");
    }
    screen.keys(b"L");
    screen.wait_for("Launch the batch?", 60);
    screen.keys(b"y");
    screen.wait_for("Batch B-0001 · Rork November apps", 60);
    // Every app is linted and tested for real in the sandbox: minutes on a busy machine.
    let board = screen.wait_until(
        "every app at the approval gate",
        900,
        |text| {
            text.lines()
                .find(|l| l.contains("apps:") && !l.contains("0 failed"))
                .map(|l| format!("an app failed: {}", l.trim()))
        },
        |text| text.contains("21 apps:") && text.contains("21 awaiting approval"),
    );
    assert!(board.contains("vs forecast"), "{board}");
    for app in &apps {
        assert!(board.contains(app), "{app} on the scoreboard:\n{board}");
    }

    // The month the batch spent, on the Clients view.
    screen.keys(b"3");
    screen.wait_for("rork · Rork", 60);
    screen.wait_for("T-0021", 60);
    screen.keys(b"q");
    let status = console.wait_exit(60);
    assert!(status.success(), "the console exits cleanly");

    let out = ecca_command(dir)
        .args(["batch", "status", "B-0001", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["apps"].as_array().map(Vec::len), Some(21), "{doc}");
    assert!(doc["forecast"].is_object(), "the forecast is stored: {doc}");
}
