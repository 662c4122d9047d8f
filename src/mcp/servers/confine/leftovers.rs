//! Temporary files and backups left by a server that died mid-write.
//!
//! A write stages `.NAME.PID-N.ecca-tmp` beside its file and keeps `.NAME.PID-N.ecca-bak`
//! while placing (see [`super::changes`]). A process killed between the two leaves them
//! in the root, where a listing would show them and `git add --all` would commit them.
//! The PID in the name says whose they are: a temporary of a process that is gone is
//! removed, those of a live process (this one, or another server writing now) are left alone.
//! A backup is never removed, even a dead process's: after a crash between two placements it
//! can be the only copy of a file's earlier content, so it is reported for the operator to
//! restore or delete (client-github never stages either kind of name).

use cap_fs_ext::DirExt;
use cap_std::fs::Dir;
use std::path::Path;

/// How deep a sweep goes; a deeper folder is left as it is.
const MAX_DEPTH: usize = 64;

/// The PID of the process that made `name`, if it is one of ecca's temporary or backup
/// names.
fn owner(name: &str) -> Option<i32> {
    let stem = name
        .strip_suffix(".ecca-tmp")
        .or_else(|| name.strip_suffix(".ecca-bak"))?;
    if !stem.starts_with('.') {
        return None;
    }
    let (_, tag) = stem.rsplit_once('.')?;
    let (pid, n) = tag.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

/// Whether a process with this PID exists (one this process may not signal still exists).
fn alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// What a sweep did, paths relative to the root.
#[derive(Debug, Default)]
pub struct Swept {
    /// Temporaries of dead processes, removed.
    pub removed: Vec<String>,
    /// Backups of dead processes, kept: they may hold a file's only earlier content.
    pub kept_backups: Vec<String>,
}

/// Removes the temporaries of dead processes beneath `dir` and finds their backups.
/// Folders are entered without following a link, `.git` is not entered, and only regular
/// files are removed (unlinking a name never follows it).
pub(super) fn sweep(dir: &Dir) -> Swept {
    let mut swept = Swept::default();
    sweep_in(dir, Path::new(""), 0, &mut swept);
    swept
}

fn sweep_in(dir: &Dir, rel: &Path, depth: usize, swept: &mut Swept) {
    let Ok(entries) = dir.entries() else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        // The entry's own type: a link is neither entered nor removed.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if text != ".git"
                && depth < MAX_DEPTH
                && let Ok(inner) = dir.open_dir_nofollow(&name)
            {
                sweep_in(&inner, &rel.join(text), depth + 1, swept);
            }
        } else if kind.is_file() && owner(text).is_some_and(|pid| !alive(pid)) {
            let path = rel.join(text).to_string_lossy().into_owned();
            if text.ends_with(".ecca-bak") {
                swept.kept_backups.push(path);
            } else if dir.remove_file(&name).is_ok() {
                swept.removed.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ecca_names_carry_an_owner() {
        assert_eq!(owner(".main.py.4242-7.ecca-tmp"), Some(4242));
        assert_eq!(owner(".a.b.c.17-0.ecca-bak"), Some(17));
        assert_eq!(owner("main.py.4242-7.ecca-tmp"), None);
        assert_eq!(owner(".main.py.4242-x.ecca-tmp"), None);
        assert_eq!(owner(".main.py.ecca-tmp"), None);
        assert_eq!(owner(".main.py.4242-7.tmp"), None);
    }
}
