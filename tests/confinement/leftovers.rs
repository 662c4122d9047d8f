//! Leftovers of a write killed midway: dead temporaries removed, backups kept, none committed.

use super::*;

/// The PID of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A write's leftovers: two of a dead process (one in a subfolder), one of this live test
/// process, a dead one's name on a link, and a dead one's leftover behind a linked folder.
/// Returns the names that must stay.
fn plant_leftovers(root: &Path, trap: &Path, dead: u32) -> Vec<String> {
    let live = std::process::id();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(format!(".main.py.{dead}-3.ecca-tmp")), "half").unwrap();
    std::fs::write(root.join(format!("src/.lib.rs.{dead}-4.ecca-bak")), "old").unwrap();
    std::fs::write(root.join(format!(".main.py.{live}-5.ecca-tmp")), "mine").unwrap();
    std::fs::write(trap.join(format!(".kept.{dead}-6.ecca-tmp")), "outside").unwrap();
    symlink(
        trap.join(format!(".kept.{dead}-6.ecca-tmp")),
        root.join(format!(".link.{dead}-7.ecca-tmp")),
    )
    .unwrap();
    symlink(trap, root.join("linked")).unwrap();
    vec![
        format!(".link.{dead}-7.ecca-tmp"),
        format!(".main.py.{live}-5.ecca-tmp"),
        "linked".to_string(),
        "src".to_string(),
        // A dead write's backup may be a file's only earlier content: it is kept.
        format!("src/.lib.rs.{dead}-4.ecca-bak"),
    ]
}

/// A start removes a dead write's temporaries beneath the root, and only those: not a live
/// process's, not through a link, and not a backup (it may be a file's only earlier content).
#[test]
fn code_assistant_start_removes_the_leftovers_of_dead_writes_only() {
    let s = sandbox();
    let dead = dead_pid();
    let mut stay = plant_leftovers(&s.root, &s.trap, dead);
    let _server = assistant(&s.root);
    let mut left = tree(&s.root);
    stay.sort();
    left.sort();
    assert_eq!(left, stay);
    assert_eq!(
        std::fs::read_to_string(s.trap.join(format!(".kept.{dead}-6.ecca-tmp"))).unwrap(),
        "outside"
    );
}

/// client-github removes a dead write's temporaries from the clone at start and before a
/// commit stages files; no temporary or backup, a live process's included, is ever committed.
#[tokio::test]
async fn client_github_removes_dead_leftovers_at_start_and_before_a_commit() {
    let s = sandbox();
    let origin = s.top.join("origin");
    std::fs::create_dir(&origin).unwrap();
    git(&origin, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::write(origin.join("README.md"), "hello\n").unwrap();
    git(&origin, &["add", "--all"]);
    git(&origin, &["commit", "--quiet", "-m", "start"]);
    let config = || GithubConfig {
        client_id: "acme".into(),
        token: "secret-token".into(),
        repo_url: origin.to_string_lossy().into_owned(),
        api_base: "http://127.0.0.1:9".into(),
        repo_slug: None,
        workdir: s.top.join("work"),
    };
    let clone = s.top.join("work").join("repo");
    let server = ClientGithub::new(config());
    server.clone_repo(Parameters(CloneArgs {})).await.unwrap();

    let dead = dead_pid();
    let at_start = clone.join(format!(".README.md.{dead}-1.ecca-tmp"));
    std::fs::write(&at_start, "half").unwrap();
    let _restarted = ClientGithub::new(config());
    assert!(
        !at_start.exists(),
        "a dead write's temporary survived a start"
    );

    let before_commit = clone.join(format!(".README.md.{dead}-2.ecca-bak"));
    let live = clone.join(format!(".README.md.{}-3.ecca-tmp", std::process::id()));
    std::fs::write(&before_commit, "old").unwrap();
    std::fs::write(&live, "mine").unwrap();
    server
        .commit(Parameters(CommitArgs {
            branch: "agt/T-1".into(),
            message: "work".into(),
            files: vec![FileArg {
                path: "main.py".into(),
                content: "print(1)\n".into(),
            }],
        }))
        .await
        .unwrap();
    assert!(
        before_commit.exists(),
        "a dead write's backup, maybe a file's only earlier content, was removed"
    );
    let out = std::process::Command::new("git")
        .current_dir(&clone)
        .args(["show", "--name-only", "--format=", "HEAD"])
        .output()
        .unwrap();
    let committed = String::from_utf8_lossy(&out.stdout).into_owned();
    // Neither the kept backup nor the live process's temporary reaches a commit.
    assert!(committed.contains("main.py"), "{committed}");
    assert!(!committed.contains(".ecca-bak"), "{committed}");
    assert!(!committed.contains(".ecca-tmp"), "{committed}");
    assert!(live.exists(), "a live process's temporary was removed");
}
