//! Listing the files beneath a root through its handle.
//!
//! Every directory is opened relative to the handle of its parent with `O_NOFOLLOW`, so a
//! directory swapped for a link to the outside between being listed and being opened is
//! refused, not followed; sizes come from the entry itself (`fstatat` on the open parent
//! handle, not following links). A path string is never walked again, so nothing listed
//! can come from outside the root.
//!
//! Skipped, as a `.gitignore`-aware walk would skip them: hidden entries (`.git` among
//! them), links, and whatever the `.gitignore` and `.ignore` files of the root and the
//! folders beneath it exclude.

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::Dir;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One regular file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative to the root, with `/` separators.
    pub path: String,
    pub bytes: u64,
}

/// The ignore files a folder may hold, read through its handle.
const IGNORE_FILES: &[&str] = &[".gitignore", ".ignore"];

/// Ignore files larger than this are not read: a real one is a few KiB.
const IGNORE_FILE_LIMIT: u64 = 1024 * 1024;

/// The rules of one folder's ignore files, if it has any. `at` is the folder's path as
/// the rules see it (the root's real path joined with the relative path; only used to
/// match names, never opened).
fn rules(dir: &Dir, at: &Path) -> Option<Gitignore> {
    let mut builder = GitignoreBuilder::new(at);
    let mut any = false;
    for name in IGNORE_FILES {
        // Ignore files are opened without following a link: a link could lead outside.
        let Ok(file) = dir.open_with(
            name,
            cap_std::fs::OpenOptions::new()
                .read(true)
                .follow(FollowSymlinks::No),
        ) else {
            continue;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut text = String::new();
        if file
            .take(IGNORE_FILE_LIMIT)
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        for line in text.lines() {
            if builder.add_line(None, line).is_ok() {
                any = true;
            }
        }
    }
    if !any {
        return None;
    }
    builder.build().ok()
}

/// A folder being listed.
#[derive(Debug)]
struct Level {
    dir: Dir,
    /// Relative to the root ("" for the root).
    rel: PathBuf,
    /// The rules of its own ignore files.
    rules: Option<Gitignore>,
    /// Its entries not yet visited, sorted by name: name, whether a folder, bytes.
    entries: std::vec::IntoIter<(String, bool, u64)>,
}

/// The files beneath a folder of the root, depth first, sorted by path.
#[derive(Debug)]
pub struct Files {
    /// The root's real path, used only to place ignore rules.
    base: PathBuf,
    /// The rules of the folders above the starting one, root first.
    outer: Vec<Gitignore>,
    stack: Vec<Level>,
}

impl Files {
    /// Starts at `start`, an open folder at `rel` beneath the root; `ancestors` are the
    /// handles of the folders above it with their relative paths, root first, whose
    /// ignore rules also apply.
    pub(super) fn new(base: &Path, ancestors: &[(Dir, PathBuf)], start: Dir, rel: PathBuf) -> Self {
        let mut files = Files {
            base: base.to_path_buf(),
            outer: ancestors
                .iter()
                .filter_map(|(dir, at)| rules(dir, &base.join(at)))
                .collect(),
            stack: Vec::new(),
        };
        files.enter(start, rel);
        files
    }

    fn enter(&mut self, dir: Dir, rel: PathBuf) {
        let rules = rules(&dir, &self.base.join(&rel));
        let mut entries = Vec::new();
        if let Ok(read) = dir.entries() {
            for entry in read.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                // The entry's own type and size: links are not followed, and are skipped.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    entries.push((name, true, 0));
                } else if meta.is_file() {
                    entries.push((name, false, meta.len()));
                }
            }
        }
        entries.sort();
        self.stack.push(Level {
            dir,
            rel,
            rules,
            entries: entries.into_iter(),
        });
    }

    /// Whether the innermost rule that speaks of `path` excludes it.
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let inner = self.stack.iter().rev().filter_map(|l| l.rules.as_ref());
        for r in inner.chain(self.outer.iter().rev()) {
            match r.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }
}

impl Iterator for Files {
    type Item = Listed;

    fn next(&mut self) -> Option<Listed> {
        loop {
            let level = self.stack.last_mut()?;
            let Some((name, is_dir, bytes)) = level.entries.next() else {
                self.stack.pop();
                continue;
            };
            let rel = level.rel.join(&name);
            if self.ignored(&self.base.join(&rel), is_dir) {
                continue;
            }
            if !is_dir {
                return Some(Listed {
                    path: rel.to_string_lossy().replace('\\', "/"),
                    bytes,
                });
            }
            let level = self.stack.last()?;
            // Opened without following a link: a folder swapped for one since it was
            // listed is skipped, not followed.
            if let Ok(dir) = level.dir.open_dir_nofollow(&name) {
                self.enter(dir, rel);
            }
        }
    }
}
