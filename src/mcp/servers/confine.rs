//! Keeping a server inside its root. The root directory is opened once; every file is then
//! reached through that directory handle (cap-std), never by walking a path string again,
//! so a symlink planted in the root or a directory swapped for a link mid-call cannot lead
//! outside. Reads may follow links that stay beneath the root; writes follow no link at
//! all (see [`changes`]). Every path a caller names is relative to the root: absolute
//! paths and `..` are refused before anything is touched.

mod changes;
mod leftovers;
mod walk;

pub use changes::{Change, WriteMode};
pub use walk::{Files, Listed};

use cap_std::fs::{Dir, OpenOptionsExt};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A root directory, opened once, that paths are resolved beneath.
#[derive(Debug, Clone)]
pub struct Root {
    /// The canonical path, used only to name things in results and to start directory
    /// walks; file contents are reached through `handle`.
    dir: PathBuf,
    handle: Arc<Dir>,
}

/// A caller's path checked to be a plain relative path: its components, in order.
pub(crate) fn components(rel: &str) -> Result<Vec<&OsStr>, String> {
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(format!(
            "{rel} is an absolute path; give a path relative to the project root"
        ));
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(name) => parts.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "{rel} leaves the project root (it contains ..); give a path inside it"
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{rel} is an absolute path; give a path relative to the project root"
                ));
            }
        }
    }
    Ok(parts)
}

/// Whether an error is cap-std's refusal of a path that resolved outside the handle.
fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains("led outside")
}

impl Root {
    pub fn new(dir: &Path) -> Result<Root, String> {
        let dir = dir.canonicalize().map_err(|e| {
            format!(
                "the root {} is not usable: {e}; pass an existing directory with --root",
                dir.display()
            )
        })?;
        if !dir.is_dir() {
            return Err(format!("the root {} is not a directory", dir.display()));
        }
        let handle = Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).map_err(|e| {
            format!(
                "the root {} cannot be opened: {e}; check its permissions",
                dir.display()
            )
        })?;
        Ok(Root {
            dir,
            handle: Arc::new(handle),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the temporary files that a server killed mid-write left beneath the root
    /// (those whose PID is no longer alive), logging each, and returns their paths relative
    /// to the root. Such a server's backups are kept and logged: one may be the only copy of
    /// a file's earlier content.
    pub fn remove_leftovers(&self) -> Vec<String> {
        let swept = leftovers::sweep(&self.handle);
        for path in &swept.removed {
            tracing::warn!(
                "removed {path} under {}: a write's leftover from a process that is gone",
                self.dir.display()
            );
        }
        for path in &swept.kept_backups {
            tracing::warn!(
                "kept {path} under {}: a backup from a write interrupted by a process that is \
                 gone; it holds a file's earlier content: restore it over that file or delete it",
                self.dir.display()
            );
        }
        swept.removed
    }

    #[cfg(test)]
    pub(crate) fn handle(&self) -> &Dir {
        &self.handle
    }

    /// A caller's relative path as a path cap-std resolves beneath the handle ("" or "."
    /// for the root itself).
    fn checked(rel: &str) -> Result<PathBuf, String> {
        let rel = rel.trim();
        let parts = components(rel)?;
        if parts.is_empty() {
            return Ok(PathBuf::from("."));
        }
        Ok(parts.iter().collect())
    }

    fn read_error(rel: &str, e: io::Error) -> String {
        if is_escape(&e) {
            format!("{rel} leads outside the project root (through a symbolic link); it is refused")
        } else {
            format!("{rel} cannot be read: {e}")
        }
    }

    /// The content of a file beneath the root. Links are followed only while they stay
    /// beneath it. The file is opened once and everything is asked of that open handle,
    /// so it cannot be swapped between the check and the read; it is opened non-blocking,
    /// so a FIFO or device put in its place is refused rather than waited on forever.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let path = Self::checked(rel)?;
        let mut options = cap_std::fs::OpenOptions::new();
        options.read(true).custom_flags(libc::O_NONBLOCK);
        let mut file = self
            .handle
            .open_with(&path, &options)
            .map_err(|e| Self::read_error(rel, e))?;
        let meta = file.metadata().map_err(|e| Self::read_error(rel, e))?;
        if !meta.is_file() {
            return Err(format!("{rel} is not a file"));
        }
        let mut content = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut content)
            .map_err(|e| Self::read_error(rel, e))?;
        Ok(content)
    }

    /// The regular files beneath a folder of the root ("" for the root), sorted by path,
    /// skipping hidden and ignored entries and links; see [`walk`]. The folder itself may
    /// be reached through a link that stays beneath the root.
    pub fn files(&self, rel: &str) -> Result<Files, String> {
        let parts = components(rel.trim())?;
        let mut ancestors = Vec::new();
        let mut at = PathBuf::new();
        let mut dir = self
            .handle
            .try_clone()
            .map_err(|e| format!("the project root cannot be used: {e}"))?;
        for part in &parts {
            let next = dir.open_dir(part).map_err(|e| {
                if is_escape(&e) {
                    Self::read_error(rel, e)
                } else if e.kind() == io::ErrorKind::NotADirectory {
                    format!("{} is not a directory", rel.trim())
                } else {
                    format!("{} cannot be listed: {e}", rel.trim())
                }
            })?;
            ancestors.push((dir, at.clone()));
            at.push(part);
            dir = next;
        }
        Ok(Files::new(&self.dir, &ancestors, dir, at))
    }

    /// Writes every change or none; see [`changes`].
    pub fn write_all(&self, changes: &[Change]) -> Result<(), String> {
        changes::write_all(&self.handle, changes)
    }

    /// Writes one file: a temporary file created beside it, then renamed into place.
    pub fn write(&self, rel: &str, content: &[u8], overwrite: bool) -> Result<(), String> {
        self.write_all(&[Change::Write {
            path: rel.to_string(),
            content: content.to_vec(),
            mode: if overwrite {
                WriteMode::CreateOrReplace
            } else {
                WriteMode::Create
            },
        }])
    }

    /// A caller's relative path in its plain form (`./a//b` → `a/b`), for results.
    pub fn normal(rel: &str) -> Result<String, String> {
        let parts = components(rel.trim())?;
        Ok(parts
            .iter()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// The path relative to the root, with `/` separators, for results.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.path().join("inside")).unwrap();
        let root = Root::new(dir.path()).unwrap();
        assert_eq!(root.read("a.txt").unwrap(), b"a");
        assert_eq!(
            root.read("./inside").unwrap(),
            b"a",
            "a link within is read"
        );
        assert!(
            root.read("../../etc/passwd")
                .unwrap_err()
                .contains("leaves the project root")
        );
        assert!(
            root.read("/etc/passwd")
                .unwrap_err()
                .contains("absolute path")
        );
        assert!(
            root.read("out/passwd")
                .unwrap_err()
                .contains("outside the project root")
        );
        assert!(root.files("out").unwrap_err().contains("outside"));
        assert!(root.files("a.txt").unwrap_err().contains("not a directory"));
        let listed: Vec<String> = root.files("").unwrap().map(|f| f.path).collect();
        assert_eq!(listed, ["a.txt"], "links are not listed");
        let msg = root.write("out/new.txt", b"x", false).unwrap_err();
        assert!(msg.contains("outside the project root"), "{msg}");
        root.write("new.txt", b"x", false).unwrap();
        assert_eq!(root.read("new.txt").unwrap(), b"x");
    }
}
