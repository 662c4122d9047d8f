//! Writes keep a file's mode from the start and refuse renames.

use super::*;

/// The new content of a file only its owner may read is never readable by
/// others, not even in the temporary file before it is put in place. A thread looks at
/// every temporary file it can catch.
#[tokio::test]
async fn a_private_files_new_content_is_never_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let s = sandbox();
    std::fs::write(s.root.join("secret.env"), "old").unwrap();
    std::fs::set_permissions(
        s.root.join("secret.env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let server = assistant(&s.root);
    let done = Arc::new(AtomicBool::new(false));
    let caught = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (root, done, caught) = (s.root.clone(), done.clone(), caught.clone());
        std::thread::spawn(move || {
            let mut open_modes = std::collections::BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir(&root).unwrap().flatten() {
                    if !entry.file_name().to_string_lossy().ends_with(".ecca-tmp") {
                        continue;
                    }
                    if let Ok(m) = entry.metadata() {
                        caught.fetch_add(1, Ordering::Relaxed);
                        if m.permissions().mode() & 0o077 != 0 {
                            open_modes.insert(m.permissions().mode() & 0o777);
                        }
                    }
                }
            }
            open_modes
        })
    };
    let content = "k".repeat(128 * 1024);
    let mut turns = Interleaving::new(&caught);
    let mut i = 0;
    while turns.more(i) {
        create_file(&server, "secret.env", &content, true)
            .await
            .unwrap();
        i += 1;
        turns.observe();
    }
    done.store(true, Ordering::Relaxed);
    let open_modes = watcher.join().unwrap();
    turns.check();
    assert!(
        open_modes.is_empty(),
        "temporary files were caught readable by others, with modes {:?}",
        open_modes
            .iter()
            .map(|m| format!("{m:o}"))
            .collect::<Vec<_>>()
    );
    let mode = std::fs::metadata(s.root.join("secret.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the file keeps its mode");
}

/// A diff that renames a file is refused in a sentence, and changes nothing.
#[tokio::test]
async fn a_diff_that_renames_a_file_is_refused() {
    let s = sandbox();
    std::fs::write(s.root.join("x.py"), "a = 1\n").unwrap();
    let server = assistant(&s.root);
    let diff = "--- a/x.py\n+++ b/y.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n";
    let msg = apply_diff(&server, diff).await.unwrap_err();
    assert!(
        msg.contains("renames x.py to y.py") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(tree(&s.root), ["x.py"]);
    assert_eq!(
        std::fs::read_to_string(s.root.join("x.py")).unwrap(),
        "a = 1\n"
    );
}
