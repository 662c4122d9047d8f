//! Keeping a server inside its root. The root directory is opened once; every file is then
//! reached through that directory handle (cap-std), never by walking a path string again,
//! so a symlink planted in the root or a directory swapped for a link mid-call cannot lead
//! outside. Reads may follow links that stay beneath the root; writes follow no link at
//! all (see [`changes`]). Every path a caller names is relative to the root: absolute
//! paths and `..` are refused before anything is touched.

mod changes;

pub use changes::{Change, WriteMode};

use cap_std::fs::Dir;
use std::ffi::OsStr;
use std::io;
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
    /// beneath it.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let path = Self::checked(rel)?;
        let meta = self
            .handle
            .metadata(&path)
            .map_err(|e| Self::read_error(rel, e))?;
        if !meta.is_file() {
            return Err(format!("{rel} is not a file"));
        }
        self.handle
            .read(&path)
            .map_err(|e| Self::read_error(rel, e))
    }

    /// A directory beneath the root ("" for the root), checked through the handle, as a
    /// path to start a walk from. The walk must not follow links, and files it finds are
    /// read back through [`Root::read`].
    pub fn dir_path(&self, rel: &str) -> Result<PathBuf, String> {
        let path = Self::checked(rel)?;
        let meta = self
            .handle
            .metadata(&path)
            .map_err(|e| Self::read_error(rel, e))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", rel.trim()));
        }
        if path == Path::new(".") {
            return Ok(self.dir.clone());
        }
        Ok(self.dir.join(path))
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
        assert!(root.dir_path("out").unwrap_err().contains("outside"));
        assert_eq!(root.dir_path("").unwrap(), root.dir());
        let msg = root.write("out/new.txt", b"x", false).unwrap_err();
        assert!(msg.contains("outside the project root"), "{msg}");
        root.write("new.txt", b"x", false).unwrap();
        assert_eq!(root.read("new.txt").unwrap(), b"x");
    }
}
