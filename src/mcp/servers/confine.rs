//! Keeping a server inside its root. Every path a caller names is relative to the root;
//! absolute paths, `..` and symlinks that lead outside are refused, whatever they point at.

use std::path::{Component, Path, PathBuf};

/// A root directory that paths are resolved inside.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
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
        Ok(Root { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves a caller's relative path to a path inside the root. With `must_exist`
    /// false the final component may be missing (a file to create), but its parent must
    /// resolve inside the root.
    pub fn resolve(&self, rel: &str, must_exist: bool) -> Result<PathBuf, String> {
        let rel = rel.trim();
        let p = Path::new(rel);
        if rel.is_empty() || rel == "." {
            return Ok(self.dir.clone());
        }
        if p.is_absolute() {
            return Err(format!(
                "{rel} is an absolute path; give a path relative to the project root"
            ));
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!(
                "{rel} leaves the project root (it contains ..); give a path inside it"
            ));
        }
        let joined = self.dir.join(p);
        let resolved = if must_exist || joined.exists() {
            joined
                .canonicalize()
                .map_err(|e| format!("{rel} cannot be read: {e}"))?
        } else {
            // A path to create: the nearest part that exists must resolve inside the root;
            // the rest is plain names (no `..`, checked above).
            let mut existing = joined.as_path();
            let mut rest = Vec::new();
            while !existing.exists() {
                rest.push(
                    existing
                        .file_name()
                        .ok_or_else(|| format!("{rel} names no file"))?
                        .to_os_string(),
                );
                existing = existing
                    .parent()
                    .ok_or_else(|| format!("{rel} has no parent directory"))?;
            }
            let mut base = existing
                .canonicalize()
                .map_err(|e| format!("{rel} cannot be resolved: {e}"))?;
            for part in rest.iter().rev() {
                base.push(part);
            }
            base
        };
        if !resolved.starts_with(&self.dir) {
            return Err(format!(
                "{rel} leads outside the project root (through a symbolic link); it is refused"
            ));
        }
        Ok(resolved)
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
        let root = Root::new(dir.path()).unwrap();
        assert!(root.resolve("a.txt", true).is_ok());
        assert!(
            root.resolve("../../etc/passwd", true)
                .unwrap_err()
                .contains("leaves the project root")
        );
        assert!(
            root.resolve("/etc/passwd", true)
                .unwrap_err()
                .contains("absolute path")
        );
        assert!(
            root.resolve("out/passwd", true)
                .unwrap_err()
                .contains("outside the project root")
        );
        assert!(
            root.resolve("out/new.txt", false)
                .unwrap_err()
                .contains("outside the project root")
        );
        assert!(root.resolve("new.txt", false).is_ok());
    }
}
