//! `ecca mcp status` and `ecca mcp call` as an operator runs them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_quickly_says_why_a_server_is_down_and_fails() {
    let data = tempfile::tempdir().unwrap();
    let live = probe_server(&Probe::new()).await;
    let (hung_a, hung_b) = (hung_listener(), hung_listener());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let registry = json!({
        "live": {"port": live.addr.port()},
        "hung-a": {"port": hung_a},
        "hung-b": {"port": hung_b},
        "gone": {"port": closed},
    });
    std::fs::write(data.path().join("mcp_servers.json"), registry.to_string()).unwrap();

    let started = Instant::now();
    let out = ecca_within(
        data.path(),
        &["mcp", "status"],
        None,
        Duration::from_secs(90),
    );
    let took = started.elapsed();
    let stdout = text(&out.stdout);
    // 2 s per server, asked at once: well under the 30 s a single hung server used to cost.
    assert!(
        took < Duration::from_secs(15),
        "status took {took:?}: {stdout}"
    );
    assert!(
        !out.status.success(),
        "status exits non-zero when a server is down"
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_string()
    };
    assert!(line("live").contains(" up "), "{stdout}");
    for hung in ["hung-a", "hung-b"] {
        let l = line(hung);
        assert!(
            l.contains("down") && l.contains("no answer within 2 s"),
            "{l}"
        );
    }
    let gone = line("gone");
    assert!(
        gone.contains("down") && gone.contains("connection refused"),
        "{gone}"
    );
    no_type_names(&stdout);

    // A one-shot call to a hung server gives up at its timeout.
    let out = ecca_within(
        data.path(),
        &["mcp", "call", "hung-a", "anything", "--timeout", "3"],
        None,
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "the hung-a server at http://127.0.0.1:{hung_a}/mcp did not answer"
        )),
        "{stderr}"
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_call_shows_every_kind_of_content_takes_args_from_a_file_or_stdin_and_speaks_plainly() {
    let data = tempfile::tempdir().unwrap();
    let server = probe_server(&Probe::new()).await;
    let d = data.path();

    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "picture"],
        None,
        Duration::from_secs(60),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("here it is"), "{stdout}");
    assert!(stdout.contains("[image image/png, 4 bytes]"), "{stdout}");
    assert!(
        stdout.contains("[resource link file:///tmp/report.pdf"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[embedded resource file:///notes.txt"),
        "{stdout}"
    );

    // Arguments larger than the OS allows on a command line: from a file, and from stdin.
    let big = "x".repeat(3 * 1024 * 1024);
    let args = json!({"text": big}).to_string();
    let file = d.join("args.json");
    std::fs::write(&file, &args).unwrap();
    let at_file = format!("@{}", file.display());
    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "echo", "--args", &at_file],
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3145728 chars"),
        "{}",
        text(&out.stdout)
    );
    let out = ecca_within(
        d,
        &["mcp", "call", &server.url, "echo", "--args", "-"],
        Some(args.as_bytes()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3145728 chars"),
        "{}",
        text(&out.stdout)
    );

    // Nothing listening: the error names the URL and says why, in words.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/mcp");
    let out = ecca_within(
        d,
        &["mcp", "call", &url, "echo", "--timeout", "5"],
        None,
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("the MCP server at {url} did not answer"))
            && stderr.contains("connection refused"),
        "{stderr}"
    );
    no_type_names(&stderr);
    server.stop().await;
}
