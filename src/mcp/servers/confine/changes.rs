//! Writing beneath a root handle: all files or none, through no symbolic link.
//!
//! Each path is walked one component at a time from the root handle, every directory
//! opened with `O_NOFOLLOW`: a component that is a link is refused rather than followed,
//! and because each step opens relative to the handle of the step before, swapping a
//! directory for a link while a call runs cannot redirect it (there is no second walk to
//! race). The target itself must be a regular file or missing; a link there is refused.
//!
//! New content goes to a temporary file made with `create_new` (`O_CREAT | O_EXCL`, which
//! never follows a link, even a dangling one) under a fresh name in the same directory
//! handle, and is then renamed into place within that handle. A rename replaces a
//! directory entry; it never writes through it.
//!
//! All or none: every file is checked and staged (its temporary file written, its folders
//! made) before the first one is put in place. A failure while staging removes the
//! temporaries and the folders made for them, and nothing has changed. Placing keeps a
//! hard-linked backup of every file it replaces or deletes, in the same directory, so a
//! failure while placing file k puts files 0..k back as they were from those backups.
//! What remains is a window this cannot close without a filesystem transaction: if the
//! process dies between two placements, the files placed so far stay changed and their
//! backups (`.NAME.PID-N.ecca-bak`) stay beside them; and another process that changes a
//! file between the check and the placement has its change replaced.

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// What may already be at a path that is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The file must not exist yet.
    Create,
    /// The file must exist.
    Replace,
    /// Either.
    CreateOrReplace,
}

/// One file's change.
#[derive(Debug, Clone)]
pub enum Change {
    Write {
        path: String,
        content: Vec<u8>,
        mode: WriteMode,
    },
    /// The file must exist.
    Delete { path: String },
}

impl Change {
    fn path(&self) -> &str {
        match self {
            Change::Write { path, .. } | Change::Delete { path } => path,
        }
    }
}

/// One change, checked and made ready to be put in place.
struct Staged {
    /// The caller's path, for messages.
    shown: String,
    /// The handle of the folder the file is in.
    dir: Dir,
    name: OsString,
    existed: bool,
    /// The new content, written beside the file; `None` for a deletion.
    temp: Option<OsString>,
    /// The previous file, hard-linked while placing.
    backup: Option<OsString>,
    placed: bool,
}

/// A folder made for a new file, to remove again when the change is abandoned.
struct MadeDir {
    parent: Dir,
    name: OsString,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// `.NAME.PID-N.ecca-SUFFIX`: a name beside the file that no other call of this process
/// uses; `create_new` and `link` refuse one that exists anyway (planted, or another
/// process), and a fresh name is tried.
fn beside(name: &OsStr, suffix: &str) -> OsString {
    // Keep the whole name within the 255 bytes a file name may have.
    let bytes = name.as_bytes();
    let stem = OsStr::from_bytes(&bytes[..bytes.len().min(200)]);
    let mut out = OsString::from(".");
    out.push(stem);
    out.push(format!(
        ".{}-{}.ecca-{suffix}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    ));
    out
}

fn link_refusal(shown: &str, link: &str) -> String {
    format!(
        "{shown} goes through the symbolic link {link}, which could lead outside the project root; \
         files are never written through links, so it is refused (write to the real path)"
    )
}

/// Why the folder `part` of `shown` could not be opened, as a sentence.
fn folder_refusal(dir: &Dir, part: &OsStr, shown: &str, walked: &str, e: &io::Error) -> String {
    match dir.symlink_metadata(part) {
        Ok(m) if m.file_type().is_symlink() => link_refusal(shown, walked),
        Ok(m) if !m.is_dir() => format!("{shown} cannot be written: {walked} is not a folder"),
        Err(n) if n.kind() == io::ErrorKind::NotFound => {
            format!("{shown} cannot be changed: the folder {walked} does not exist")
        }
        _ => format!("{shown} cannot be written: the folder {walked} cannot be opened: {e}"),
    }
}

/// Opens the folders of `parts` one by one beneath `root`, following no link; makes the
/// missing ones when `make` is set.
fn open_folders(
    root: &Dir,
    shown: &str,
    parts: &[&OsStr],
    make: bool,
    made: &mut Vec<MadeDir>,
) -> Result<Dir, String> {
    let mut dir = root
        .try_clone()
        .map_err(|e| format!("the project root cannot be used: {e}"))?;
    let mut walked = PathBuf::new();
    for part in parts {
        walked.push(part);
        let walked_text = walked.to_string_lossy().into_owned();
        let next = match dir.open_dir_nofollow(part) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound && make => {
                match dir.create_dir(part) {
                    Ok(()) => made.push(MadeDir {
                        parent: dir
                            .try_clone()
                            .map_err(|e| format!("the folder {walked_text} cannot be used: {e}"))?,
                        name: part.to_os_string(),
                    }),
                    // Made meanwhile, or a dangling link: opening it below tells which.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(format!(
                            "{shown} cannot be written: the folder {walked_text} could not be made: {e}"
                        ));
                    }
                }
                dir.open_dir_nofollow(part)
                    .map_err(|e| folder_refusal(&dir, part, shown, &walked_text, &e))?
            }
            Err(e) => return Err(folder_refusal(&dir, part, shown, &walked_text, &e)),
        };
        dir = next;
    }
    Ok(dir)
}

/// The mode a new file is created with (before the umask), as any editor would.
const NEW_FILE_MODE: u32 = 0o666;

/// Writes `content` to a fresh temporary file and returns its name. Names come from
/// `names` (see [`beside`]); one that is taken (planted, or another process's) is passed
/// over, never opened. The file is created with the mode it will end with, so its content
/// is never readable by anyone the finished file would not let read it.
fn write_temp(
    dir: &Dir,
    content: &[u8],
    permissions: Option<Permissions>,
    names: &mut dyn FnMut() -> OsString,
) -> io::Result<OsString> {
    let mode = permissions
        .as_ref()
        .map_or(NEW_FILE_MODE, |p| p.mode() & 0o7777);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(mode);
    for _ in 0..64 {
        let temp = names();
        let mut file = match dir.open_with(&temp, &options) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        // The umask may have taken bits away at creation; give them back before the
        // content goes in (it only ever narrows, so nothing was exposed meanwhile).
        let written = match &permissions {
            Some(p) => file.set_permissions(p.clone()),
            None => Ok(()),
        }
        .and_then(|()| file.write_all(content));
        if let Err(e) = written {
            let _ = dir.remove_file(&temp);
            return Err(e);
        }
        return Ok(temp);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every temporary name tried was taken",
    ))
}

/// Checks one change and writes its temporary file.
fn stage(root: &Dir, change: &Change, made: &mut Vec<MadeDir>) -> Result<Staged, String> {
    let shown = change.path().trim().to_string();
    let parts = super::components(&shown)?;
    let Some((name, folders)) = parts.split_last() else {
        return Err(format!(
            "the path {shown:?} names the project root itself, not a file; give a file's path"
        ));
    };
    let (content, mode) = match change {
        Change::Write { content, mode, .. } => (Some(content), *mode),
        Change::Delete { .. } => (None, WriteMode::Replace),
    };
    let dir = open_folders(root, &shown, folders, mode != WriteMode::Replace, made)?;
    let (existed, permissions) = match dir.symlink_metadata(name) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{shown} is a symbolic link, which could lead outside the project root; files \
                 are never written through links, so it is refused (remove the link first)"
            ));
        }
        Ok(m) if m.is_dir() => return Err(format!("{shown} is a folder, not a file")),
        Ok(m) if !m.is_file() => return Err(format!("{shown} is not a regular file")),
        Ok(m) => (true, Some(m.permissions())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (false, None),
        Err(e) => return Err(format!("{shown} cannot be checked: {e}")),
    };
    match (mode, existed) {
        (WriteMode::Create, true) => {
            return Err(format!("{shown} already exists, so it is not created"));
        }
        (WriteMode::Replace, false) => return Err(format!("{shown} does not exist")),
        _ => {}
    }
    let name = name.to_os_string();
    let temp = match content {
        Some(bytes) => Some(
            write_temp(&dir, bytes, permissions, &mut || beside(&name, "tmp"))
                .map_err(|e| format!("{shown} could not be written: {e}"))?,
        ),
        None => None,
    };
    Ok(Staged {
        shown,
        dir,
        name,
        existed,
        temp,
        backup: None,
        placed: false,
    })
}

/// Hard-links the current file to a fresh backup name beside it.
fn keep_backup(s: &Staged) -> io::Result<OsString> {
    for _ in 0..64 {
        let backup = beside(&s.name, "bak");
        match s.dir.hard_link(&s.name, &s.dir, &backup) {
            Ok(()) => return Ok(backup),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every backup name tried was taken",
    ))
}

/// Puts one staged change in place.
fn place(s: &mut Staged) -> Result<(), String> {
    if s.existed {
        let backup = keep_backup(s).map_err(|e| {
            format!(
                "could not keep a backup of {} before changing it: {e}",
                s.shown
            )
        })?;
        s.backup = Some(backup);
    }
    match (&s.temp, s.existed) {
        (Some(temp), true) => {
            s.dir
                .rename(temp, &s.dir, &s.name)
                .map_err(|e| format!("could not write {}: {e}", s.shown))?;
            s.temp = None;
        }
        (Some(temp), false) => {
            // A link, unlike a rename, refuses a name that appeared since the check.
            s.dir.hard_link(temp, &s.dir, &s.name).map_err(|e| {
                format!(
                    "could not create {}: {e} (did something else create it meanwhile?)",
                    s.shown
                )
            })?;
            s.placed = true;
            if s.dir.remove_file(temp).is_ok() {
                s.temp = None;
            }
        }
        (None, _) => {
            s.dir
                .remove_file(&s.name)
                .map_err(|e| format!("could not delete {}: {e}", s.shown))?;
        }
    }
    s.placed = true;
    Ok(())
}

/// Puts a placed change back as it was; the sentence says what could not be.
fn undo(s: &mut Staged) -> Result<(), String> {
    if !s.placed {
        return Ok(());
    }
    match s.backup.take() {
        Some(backup) => s.dir.rename(&backup, &s.dir, &s.name).map_err(|e| {
            // The backup is now the only copy of the previous content: it is no longer
            // `s.backup`, so cleaning up leaves it where the sentence says it is.
            format!(
                "{} could not be put back ({e}); its previous content is in {} beside it",
                s.shown,
                backup.to_string_lossy()
            )
        }),
        None => s.dir.remove_file(&s.name).map_err(|e| {
            format!(
                "{} was created and could not be removed again: {e}",
                s.shown
            )
        }),
    }
}

/// Removes what staging and placing left beside the files: temporaries, backups and,
/// when the change was abandoned, the folders made for it (only while still empty).
fn clean(staged: &[Staged], made: &[MadeDir], abandoned: bool) {
    for s in staged {
        for leftover in [&s.temp, &s.backup].into_iter().flatten() {
            if let Err(e) = s.dir.remove_file(leftover) {
                tracing::warn!(
                    "could not remove {} beside {}: {e}",
                    leftover.to_string_lossy(),
                    s.shown
                );
            }
        }
    }
    if abandoned {
        for m in made.iter().rev() {
            let _ = m.parent.remove_dir(&m.name);
        }
    }
}

/// Writes every change or none; the error says what failed and that nothing changed.
pub(super) fn write_all(root: &Dir, changes: &[Change]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for change in changes {
        let parts: PathBuf = super::components(change.path().trim())?.iter().collect();
        if !seen.insert(parts) {
            return Err(format!(
                "{} is named twice; give each file once, with all of its changes together",
                change.path().trim()
            ));
        }
    }
    let mut made = Vec::new();
    let mut staged = Vec::new();
    for change in changes {
        match stage(root, change, &mut made) {
            Ok(s) => staged.push(s),
            Err(e) => {
                clean(&staged, &made, true);
                return Err(if changes.len() > 1 {
                    format!("{e}; nothing was changed")
                } else {
                    e
                });
            }
        }
    }
    for i in 0..staged.len() {
        if let Err(e) = place(&mut staged[i]) {
            let failed_undo: Vec<String> = staged[..=i]
                .iter_mut()
                .rev()
                .filter_map(|s| undo(s).err())
                .collect();
            clean(&staged, &made, true);
            return Err(if failed_undo.is_empty() {
                format!("{e}; every file was left as it was")
            } else {
                format!(
                    "{e}; putting the files back failed too: {}",
                    failed_undo.join("; ")
                )
            });
        }
    }
    clean(&staged, &made, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Root;
    use super::*;

    #[test]
    fn a_failure_while_placing_puts_every_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.txt"), "old a").unwrap();
        std::fs::write(p.join("gone.txt"), "old gone").unwrap();
        let root = Root::new(p).unwrap();
        let changes = [
            Change::Write {
                path: "a.txt".into(),
                content: b"new a".to_vec(),
                mode: WriteMode::Replace,
            },
            Change::Delete {
                path: "gone.txt".into(),
            },
            Change::Write {
                path: "new/b.txt".into(),
                content: b"b".to_vec(),
                mode: WriteMode::Create,
            },
        ];
        let mut made = Vec::new();
        let mut staged: Vec<Staged> = changes
            .iter()
            .map(|c| stage(root.handle(), c, &mut made).unwrap())
            .collect();
        place(&mut staged[0]).unwrap();
        place(&mut staged[1]).unwrap();
        // Something else takes the third name after the check: placing it must fail.
        std::fs::write(p.join("new/b.txt"), "theirs").unwrap();
        let err = place(&mut staged[2]).unwrap_err();
        assert!(err.contains("could not create new/b.txt"), "{err}");
        for s in staged.iter_mut().rev() {
            undo(s).unwrap();
        }
        clean(&staged, &made, true);
        assert_eq!(std::fs::read_to_string(p.join("a.txt")).unwrap(), "old a");
        assert_eq!(
            std::fs::read_to_string(p.join("gone.txt")).unwrap(),
            "old gone"
        );
        assert_eq!(
            std::fs::read_to_string(p.join("new/b.txt")).unwrap(),
            "theirs"
        );
        let mut names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.txt", "gone.txt", "new"],
            "no temporaries or backups left"
        );
    }

    #[test]
    fn a_file_that_cannot_be_put_back_keeps_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.txt"), "old a").unwrap();
        let root = Root::new(p).unwrap();
        let change = Change::Write {
            path: "a.txt".into(),
            content: b"new a".to_vec(),
            mode: WriteMode::Replace,
        };
        let mut made = Vec::new();
        let mut staged = vec![stage(root.handle(), &change, &mut made).unwrap()];
        place(&mut staged[0]).unwrap();
        // Something puts a non-empty folder where the file was: it cannot be put back.
        std::fs::remove_file(p.join("a.txt")).unwrap();
        std::fs::create_dir(p.join("a.txt")).unwrap();
        std::fs::write(p.join("a.txt/theirs"), "x").unwrap();
        let err = undo(&mut staged[0]).unwrap_err();
        clean(&staged, &made, true);
        let kept = err
            .split("its previous content is in ")
            .nth(1)
            .and_then(|rest| rest.strip_suffix(" beside it"))
            .unwrap_or_else(|| panic!("the sentence names the backup: {err}"));
        assert_eq!(
            std::fs::read_to_string(p.join(kept)).unwrap(),
            "old a",
            "the backup the sentence names is still there"
        );
    }

    #[test]
    fn a_taken_temporary_name_is_passed_over_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(outside.path().join("victim.txt"), "keep").unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim.txt"), p.join(".planted")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("new.txt"), p.join(".dangling")).unwrap();
        let root = Root::new(p).unwrap();
        let mut names = [".planted", ".dangling", ".fresh"]
            .map(OsString::from)
            .into_iter();
        let temp = write_temp(root.handle(), b"content", None, &mut || {
            names
                .next()
                .unwrap_or_else(|| OsString::from(".unexpected"))
        })
        .unwrap();
        assert_eq!(
            temp,
            OsString::from(".fresh"),
            "both taken names were passed over"
        );
        assert_eq!(
            std::fs::read_to_string(p.join(".fresh")).unwrap(),
            "content"
        );
        assert_eq!(
            std::fs::read_to_string(outside.path().join("victim.txt")).unwrap(),
            "keep"
        );
        assert!(
            !outside.path().join("new.txt").exists(),
            "nothing was created through the dangling link"
        );
    }
}
