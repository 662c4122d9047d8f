//! Listing and reading while the tree changes underneath: nothing from outside is shown or waited on.

use super::*;

/// While a thread swaps a folder for a link to the outside, listing and
/// describing the project never shows a name or size from outside.
#[tokio::test]
async fn a_folder_swapped_for_a_link_mid_listing_never_shows_the_outside() {
    let s = sandbox();
    std::fs::create_dir(s.root.join("sub")).unwrap();
    std::fs::write(s.root.join("sub/inside.py"), "def f():\n    pass\n").unwrap();
    std::fs::write(s.trap.join("secret_outside.py"), "x".repeat(7777)).unwrap();
    symlink(&s.trap, s.root.join("link")).unwrap();
    let server = CodeContext::new(Root::new(&s.root).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (root, done, swaps) = (s.root.clone(), done.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                exchange(&root.join("sub"), &root.join("link"));
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut seen_inside = 0;
    let mut turns = Interleaving::new(&swaps);
    let mut i = 0;
    while turns.more(i) {
        let path = ["", "sub", "link"][i as usize % 3];
        let listed = server
            .list_files(Parameters(ListFilesArgs {
                path: Some(path.into()),
                contains: None,
                max: None,
            }))
            .await;
        if let Ok(listed) = listed {
            for f in &listed.0.files {
                assert!(
                    !f.path.contains("secret_outside") && f.bytes != 7777,
                    "listed from outside: {f:?}"
                );
                seen_inside += usize::from(f.path.ends_with("inside.py"));
            }
        }
        if i % 4 == 0
            && let Ok(structure) = server
                .get_structure(Parameters(StructureArgs { path: None }))
                .await
        {
            let s = &structure.0;
            assert!(
                !s.tree.contains("secret_outside")
                    && s.files.iter().all(|f| !f.path.contains("secret_outside")),
                "described from outside: {}",
                s.tree
            );
        }
        i += 1;
        turns.observe();
    }
    done.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    turns.check();
    assert!(
        seen_inside > 0,
        "the real folder's file was listed at times"
    );
}

/// A file swapped for a FIFO between the check and the read is refused,
/// never waited on. The reads run on their own thread; a read that hangs shows as no
/// progress for a long while, and the FIFO is then opened for writing to release it.
#[test]
fn a_file_swapped_for_a_fifo_is_refused_not_waited_on() {
    let s = sandbox();
    std::fs::write(s.root.join("data.txt"), "plain\n").unwrap();
    let fifo = std::ffi::CString::new(s.root.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let root = Root::new(&s.root).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (dir, done, swaps) = (s.root.clone(), done.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                exchange(&dir.join("data.txt"), &dir.join("pipe"));
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let reader = {
        let (swaps, reads) = (swaps.clone(), reads.clone());
        std::thread::spawn(move || {
            let mut turns = Interleaving::new(&swaps);
            let mut i = 0;
            let mut refused = 0;
            while turns.more(i) {
                match root.read("data.txt") {
                    Ok(content) => assert_eq!(content, b"plain\n"),
                    Err(e) => {
                        assert!(e.contains("is not a file"), "{e}");
                        refused += 1;
                    }
                }
                i += 1;
                reads.fetch_add(1, Ordering::Relaxed);
                turns.observe();
            }
            turns.check();
            refused
        })
    };
    let mut last = (0, Instant::now());
    while !reader.is_finished() {
        let now = reads.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            done.store(true, Ordering::Relaxed);
            for name in ["data.txt", "pipe"] {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(s.root.join(name));
            }
            panic!("a read blocked on the FIFO for 30 seconds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let refused = reader.join().unwrap();
    assert!(refused > 0, "the FIFO was met at times and refused");
}
