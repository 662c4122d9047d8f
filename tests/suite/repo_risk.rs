//! The risk gate on a client's repository, with the real binary: a change to an auth module
//! that hard-codes a cloud key scores above the critical line, shows the key only masked,
//! and is delivered only with both a critical review and a noted secret override; a
//! one-line README change scores next to nothing.

use crate::common;

use common::fixture_repo::python_project;
use common::git_remote::has_branch;
use common::repo_run::{EccaHome, acme_with_repo, repo_model, use_model};
use common::require_docker_and_sandbox;
use serde_json::{Value, json};
use std::path::Path;

/// An AWS-style access key id, put together at run time so the source holds none.
fn aws_key() -> String {
    format!("AKIA{}", "Q3RZ7WJ2KD5LMN4P")
}

fn auth_module_reply(key: &str) -> String {
    format!(
        "```file path=greet/auth.py
\"\"\"Signs a user in against the greeting service.\"\"\"

import hmac

AWS_ACCESS_KEY_ID = \"{key}\"


def login(user, password, expected):
    \"\"\"Whether `password` is the user's.\"\"\"
    return hmac.compare_digest(password, expected)
```
"
    )
}

fn home_in(dir: &Path) -> EccaHome {
    let home_dir = dir.join("home");
    std::fs::create_dir_all(&home_dir).unwrap();
    EccaHome::new(&home_dir)
}

fn risk_of(run: &Value) -> Value {
    run["repo"]["risk"].clone()
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_coded_key_in_an_auth_module_needs_a_critical_review_and_a_secret_override() {
    require_docker_and_sandbox();
    let key = aws_key();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let plan = json!({
        "approach": "a login helper in greet/auth.py",
        "files": [{"path": "greet/auth.py", "action": "create", "why": "sign users in"}],
        "criteria": [{"text": "the auth module imports", "check": "python3 -c 'import greet.auth'"}],
    });
    let model = repo_model(plan, auth_module_reply(&key)).await;
    let mut home = home_in(dir.path());
    use_model(&mut home, &model);
    acme_with_repo(&home, &bare.to_string_lossy());

    let run = home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Add a login helper",
        "--accept",
        "the auth module imports",
        "--json",
    ]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    let risk = risk_of(&run);
    let score = risk["score"].as_u64().expect("a risk score");
    assert!(score > 70, "{risk:#}");
    let secrets = risk["secrets"].as_array().expect("secret findings");
    assert_eq!(secrets.len(), 1, "{risk:#}");
    assert_eq!(secrets[0]["path"], "greet/auth.py");
    let masked = secrets[0]["masked"].as_str().unwrap_or("");
    assert!(
        masked.contains('*') && !masked.contains(&key[..16]),
        "{masked}"
    );

    let refused = home.run(&["approve", "T-0001"]);
    assert!(!refused.status.success(), "{}", said(&refused));
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        err.contains("secret") && err.contains("aws access key") && err.contains("greet/auth.py"),
        "{err}"
    );
    assert!(err.contains("--override-secret"), "{err}");
    let refused = home.run(&["approve", "T-0001", "--critical-reviewed"]);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("aws access key"),
        "{}",
        said(&refused)
    );
    // With the override but without the critical review, the score still stops it.
    let refused = home.run(&["approve", "T-0001", "--override-secret", "test fixture key"]);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--critical-reviewed"),
        "{}",
        said(&refused)
    );
    assert!(!has_branch(&bare, "agt/T-0001"), "pushed before approval");
    assert_eq!(home.task("T-0001")["status"], "awaiting_approval");

    home.ok(&[
        "approve",
        "T-0001",
        "--critical-reviewed",
        "--override-secret",
        "test fixture key",
    ]);
    assert_eq!(home.task("T-0001")["status"], "delivered");
    assert!(has_branch(&bare, "agt/T-0001"));

    // The key is in the diff the operator reads, and in no other output.
    let transcript = home.transcript.lock().unwrap().join("\n");
    assert!(!transcript.contains(&key), "the full key was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_line_readme_change_scores_low() {
    require_docker_and_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let bare = python_project(dir.path(), false);
    let plan = json!({
        "approach": "reword the README",
        "files": [{"path": "README.md", "action": "change", "why": "the wording"}],
        "criteria": [],
    });
    let reply = "```diff
--- a/README.md
+++ b/README.md
@@ -1,3 +1,3 @@
 # greet
 
-Prints a greeting.
+Prints a friendly greeting.
```
";
    let model = repo_model(plan, reply.into()).await;
    let mut home = home_in(dir.path());
    use_model(&mut home, &model);
    acme_with_repo(&home, &bare.to_string_lossy());

    let run = home.json(&[
        "run",
        "--client",
        "acme",
        "--task",
        "Reword the README",
        "--json",
    ]);
    assert_eq!(run["status"], "awaiting_approval", "{run:#}");
    assert_eq!(run["result_status"], "SUCCESS", "{run:#}");
    let files = run["repo"]["files"].as_array().expect("files").clone();
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(files[0]["path"], "README.md");
    let risk = risk_of(&run);
    assert!(risk["score"].as_u64().expect("a score") <= 10, "{risk:#}");
    assert_eq!(risk["secrets"], json!([]), "{risk:#}");
    home.ok(&["approve", "T-0001"]);
    assert_eq!(home.task("T-0001")["status"], "delivered");
}
