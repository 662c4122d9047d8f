//! Repository benchmarks: making a run's worktree of a 10,000-file repository, and the
//! diff of a small change against its base.
//!
//! Run with `cargo bench --bench repo`. The repository is small text files in nested
//! directories, one commit, mirrored the way a client's repository is. Each figure is the
//! median of several rounds (the worktree is removed between rounds, untimed); the target
//! for `create_worktree` is a median of at most 1 s. Plain `git worktree add` (and the same
//! with parallel checkout) is timed alongside as the reference.

use ecca::repo::AuditEntry;
use ecca::repo::git::run_git;
use ecca::repo::worktree::{
    create_worktree, diff_against_base, ensure_mirror, remove_worktree, worktrees_dir,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 10_000;
const ROUNDS: usize = 9;

struct Figures {
    median: f64,
    min: f64,
    max: f64,
}

fn figures(mut ms: Vec<f64>) -> Figures {
    ms.sort_by(|a, b| a.total_cmp(b));
    Figures {
        median: ms[ms.len() / 2],
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "| {name} | {:.0} ms | {:.0} / {:.0} ms | {ROUNDS} |",
        f.median, f.min, f.max
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository of `FILES` small text files, 100 per directory, two levels deep.
fn big_repository(dir: &Path) {
    std::fs::create_dir_all(dir).expect("repo dir");
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..FILES {
        let sub = dir.join(format!("pkg{:02}/mod{:02}", i / 1000, (i / 100) % 10));
        std::fs::create_dir_all(&sub).expect("nested dir");
        let text = format!("# file {i}\ndef f{i}(x):\n    return x + {i}\n");
        std::fs::write(sub.join(format!("f{i:05}.py")), text).expect("file");
    }
    git(dir, &["add", "--all"]);
    // No background auto-gc racing the clone below: pack once, as a real repository is.
    git(
        dir,
        &[
            "-c",
            "gc.auto=0",
            "commit",
            "--quiet",
            "-m",
            "ten thousand files",
        ],
    );
    git(dir, &["gc", "--quiet"]);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = tmp.path().join("source");
    big_repository(&source);
    let data = tmp.path().join("data");
    let url = source.to_string_lossy().into_owned();
    let mut audit: Vec<AuditEntry> = Vec::new();
    let mirror = rt
        .block_on(ensure_mirror(&data, "bench", &url, &mut audit))
        .expect("mirror");
    let wts = worktrees_dir(&data);

    println!("| benchmark | median | min / max | rounds |");
    println!("|---|---|---|---|");

    // The reference: git alone, plain and with parallel checkout (one worker per core).
    for (label, settings) in [
        ("plain", None),
        ("checkout.workers=0", Some("checkout.workers=0")),
    ] {
        let mut ms = Vec::new();
        for round in 0..=ROUNDS {
            let target = wts.join(format!("ref-{round}"));
            let target_text = target.to_string_lossy().into_owned();
            let mut args = Vec::new();
            if let Some(s) = settings {
                args.extend(["-c", s]);
            }
            args.extend([
                "worktree",
                "add",
                "--quiet",
                "-B",
                "bench/ref",
                target_text.as_str(),
                "origin/main",
            ]);
            let started = Instant::now();
            rt.block_on(run_git(Some(&mirror), &args, &mut audit))
                .expect("git worktree add");
            // Round 0 warms the page cache and is not counted.
            if round > 0 {
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            rt.block_on(remove_worktree(&mirror, &target, false, &mut audit))
                .expect("remove");
        }
        report(
            &format!("git worktree add, {FILES} files ({label})"),
            &figures(ms),
        );
    }

    let mut made = Vec::new();
    let mut removed = Vec::new();
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let wt = rt
            .block_on(create_worktree(
                &mirror,
                &wts,
                "T-0001-r1",
                "agt/T-0001",
                "main",
                &mut audit,
            ))
            .expect("create_worktree");
        let took = started.elapsed();
        let started = Instant::now();
        rt.block_on(remove_worktree(&mirror, &wt.path, true, &mut audit))
            .expect("remove_worktree");
        if round > 0 {
            made.push(took.as_secs_f64() * 1000.0);
            removed.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let made = figures(made);
    report(
        &format!("create_worktree, {FILES} files (target ≤ 1000 ms median)"),
        &made,
    );
    report(
        &format!("remove_worktree, {FILES} files"),
        &figures(removed),
    );

    let wt = rt
        .block_on(create_worktree(
            &mirror,
            &wts,
            "T-0002-r1",
            "agt/T-0002",
            "main",
            &mut audit,
        ))
        .expect("create_worktree");
    let mut ms = Vec::new();
    for round in 0..=ROUNDS {
        // Three files changed anew each round: one edited, one added, one deleted.
        std::fs::write(
            wt.path.join("pkg00/mod00/f00000.py"),
            format!("# edited {round}\n"),
        )
        .expect("edit");
        std::fs::write(wt.path.join(format!("new{round}.py")), "x = 1\n").expect("add");
        let gone = wt.path.join(format!("pkg05/mod00/f05{round:03}.py"));
        std::fs::remove_file(&gone).expect("delete");
        let started = Instant::now();
        let diff = rt
            .block_on(diff_against_base(
                &wt.path,
                &wt.base_commit,
                1 << 20,
                &mut audit,
            ))
            .expect("diff");
        if round > 0 {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        assert!(diff.files.len() >= 3);
        // Back to the base (the staged new file goes too) for the next round.
        git(&wt.path, &["reset", "--quiet", "--hard"]);
    }
    report(
        &format!("diff_against_base, 3 files changed in {FILES}"),
        &figures(ms),
    );
    std::thread::sleep(Duration::from_millis(10));
}
