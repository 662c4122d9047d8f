//! Images built with no registry. A root filesystem is assembled from files that Debian
//! packages installed on this machine (interpreters, their standard libraries, and every
//! shared library `ldd` says they load) plus ecca's own binary, packed as a tarball and
//! imported through the engine (`docker import`). `compose/` has Dockerfiles for operators
//! who can reach a registry.

use super::{ContainerError, Engine};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Runs untrusted code: python3, node and bash with a few core utilities.
pub const SANDBOX_IMAGE: &str = "ecca-sandbox:latest";
/// Runs the MCP servers: ecca itself, ruff, node and git.
pub const SERVER_IMAGE: &str = "ecca-mcp:latest";

/// Which images to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Sandbox,
    Server,
    Both,
}

/// A root filesystem being assembled: destination path → source file on this machine.
#[derive(Default)]
struct Rootfs {
    files: BTreeMap<String, PathBuf>,
    dirs: BTreeSet<String>,
    symlinks: BTreeMap<String, String>,
    generated: BTreeMap<String, (Vec<u8>, u32)>,
}

fn required(path: &str, package: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if p.exists() {
        Ok(p.to_path_buf())
    } else {
        Err(format!(
            "{path} is missing on this machine; install Debian's {package} package (apt-get install {package})"
        ))
    }
}

/// The shared libraries a binary loads, as `ldd` reports them.
fn ldd(path: &Path) -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("ldd")
        .arg(path)
        .output()
        .map_err(|e| format!("could not run ldd (Debian's libc-bin): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().find(|t| t.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

impl Rootfs {
    fn add_file(&mut self, dest: &str, src: &Path) {
        self.files
            .insert(dest.trim_start_matches('/').to_string(), src.to_path_buf());
    }

    /// A binary and every library it needs, at their usual paths.
    fn add_binary(&mut self, dest: &str, src: &Path) -> Result<(), String> {
        self.add_file(dest, src);
        self.add_libraries_of(src)
    }

    fn add_libraries_of(&mut self, src: &Path) -> Result<(), String> {
        for lib in ldd(src)? {
            let dest = lib.to_string_lossy().into_owned();
            if !self.files.contains_key(dest.trim_start_matches('/')) {
                self.add_file(&dest, &lib);
            }
        }
        Ok(())
    }

    /// Every file under `dir` (following its symlinks), minus directories named in `skip`;
    /// shared objects bring their libraries.
    fn add_tree(&mut self, dir: &Path, skip: &[&str]) -> Result<(), String> {
        let walker = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .follow_links(true)
            .filter_entry({
                let skip: Vec<String> = skip.iter().map(|s| s.to_string()).collect();
                move |e| !skip.iter().any(|s| e.file_name() == s.as_str())
            })
            .build();
        for entry in walker.filter_map(Result::ok) {
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let path = entry.path();
                let dest = path.to_string_lossy().into_owned();
                if dest.ends_with(".so") || dest.contains(".so.") {
                    self.add_libraries_of(path)?;
                }
                self.add_file(&dest, path);
            }
        }
        Ok(())
    }

    /// Every file under `dir` (following symlinks), placed under `dest` instead.
    fn add_tree_at(&mut self, dir: &Path, dest: &str) {
        let walker = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .follow_links(true)
            .build();
        for entry in walker.filter_map(Result::ok) {
            if entry.file_type().is_some_and(|t| t.is_file())
                && let Ok(rel) = entry.path().strip_prefix(dir)
            {
                let target = format!("{}/{}", dest.trim_end_matches('/'), rel.display());
                self.add_file(&target, entry.path());
            }
        }
    }

    fn add_text(&mut self, dest: &str, text: &str, mode: u32) {
        self.generated.insert(
            dest.trim_start_matches('/').to_string(),
            (text.as_bytes().to_vec(), mode),
        );
    }

    fn base(&mut self) {
        for d in ["scratch", "tmp", "etc", "usr/bin", "bin"] {
            self.dirs.insert(d.into());
        }
        self.add_text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644);
        self.add_text("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644);
    }

    fn to_tar(&self) -> Result<Vec<u8>, String> {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(true);
        // GNU sparse entries are refused by older engines ("unhandled tar header type 83").
        tar.sparse(false);
        let io = |e: std::io::Error| format!("could not pack the image: {e}");
        for d in &self.dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(if d == "scratch" || d == "tmp" {
                0o1777
            } else {
                0o755
            });
            h.set_size(0);
            h.set_cksum();
            tar.append_data(&mut h, format!("{d}/"), std::io::empty())
                .map_err(io)?;
        }
        for (dest, src) in &self.files {
            tar.append_path_with_name(src, dest)
                .map_err(|e| format!("could not add {} to the image: {e}", src.display()))?;
        }
        for (dest, (bytes, mode)) in &self.generated {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(*mode);
            h.set_cksum();
            tar.append_data(&mut h, dest, bytes.as_slice())
                .map_err(io)?;
        }
        for (dest, target) in &self.symlinks {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, dest, target).map_err(io)?;
        }
        tar.into_inner().map_err(io)
    }
}

/// Core utilities a bash script may reasonably call.
const UTILITIES: &[&str] = &[
    "env", "cat", "ls", "mkdir", "rm", "cp", "mv", "head", "tail", "wc", "sort", "uniq", "tr",
    "date", "sleep", "true", "false", "echo", "grep", "sed", "dirname", "basename", "seq", "id",
];

fn sandbox_rootfs() -> Result<Rootfs, String> {
    let mut fs = Rootfs::default();
    fs.base();
    let python = required("/usr/bin/python3", "python3-minimal")?
        .canonicalize()
        .map_err(|e| format!("/usr/bin/python3 cannot be resolved: {e}"))?;
    let version = python
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs.add_binary(&format!("/usr/bin/{version}"), &python)?;
    fs.symlinks
        .insert("usr/bin/python3".into(), version.clone());
    fs.symlinks.insert("usr/bin/python".into(), version.clone());
    let stdlib = required(&format!("/usr/lib/{version}"), "libpython3-stdlib")?;
    fs.add_tree(
        &stdlib,
        &[
            "test",
            "__pycache__",
            "idlelib",
            "tkinter",
            "turtledemo",
            "ensurepip",
            "lib2to3",
        ],
    )?;
    fs.add_binary("/usr/bin/node", &required("/usr/bin/node", "nodejs")?)?;
    fs.add_binary("/bin/bash", &required("/bin/bash", "bash")?)?;
    fs.add_binary("/bin/sh", &required("/bin/sh", "dash")?)?;
    // TypeScript and React Native checks: only when `build` could install the tools; the
    // steps that need them say `skipped` in an image without.
    if let Some(tools) = super::node_tools::installed() {
        fs.add_tree_at(
            &tools.join("node_modules"),
            &format!("{}/node_modules", super::node_tools::IN_IMAGE),
        );
    }
    for tool in UTILITIES {
        for dir in ["/usr/bin", "/bin"] {
            let p = Path::new(dir).join(tool);
            if p.exists() {
                fs.add_binary(&format!("/usr/bin/{tool}"), &p)?;
                break;
            }
        }
    }
    Ok(fs)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// ruff's real binary: the one on PATH may be a wrapper script (pyenv's shims are), which
/// would not run inside the image; ruff's Python package knows where its binary is.
fn ruff_binary() -> Option<PathBuf> {
    let found = on_path("ruff")?;
    let is_script = std::fs::read(&found)
        .map(|b| b.starts_with(b"#!"))
        .unwrap_or(true);
    if !is_script {
        return Some(found);
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import ruff; print(ruff.find_ruff_bin())"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    path.is_file().then_some(path)
}

fn server_rootfs() -> Result<Rootfs, String> {
    let mut fs = Rootfs::default();
    fs.base();
    let ecca =
        std::env::current_exe().map_err(|e| format!("could not find ecca's own binary: {e}"))?;
    fs.add_binary("/usr/local/bin/ecca", &ecca)?;
    fs.add_binary("/usr/bin/node", &required("/usr/bin/node", "nodejs")?)?;
    fs.add_binary("/bin/sh", &required("/bin/sh", "dash")?)?;
    if let Some(ruff) = ruff_binary() {
        fs.add_binary("/usr/local/bin/ruff", &ruff)?;
    }
    let git = required("/usr/bin/git", "git")?;
    fs.add_binary("/usr/bin/git", &git)?;
    // The helpers git runs for clone, fetch and push: builtins are the git binary under
    // another name (linked, not copied); the http transports are programs of their own.
    for builtin in ["git-upload-pack", "git-receive-pack", "git-upload-archive"] {
        fs.symlinks
            .insert(format!("usr/lib/git-core/{builtin}"), "/usr/bin/git".into());
        fs.symlinks
            .insert(format!("usr/bin/{builtin}"), "/usr/bin/git".into());
    }
    for helper in ["git-remote-http", "git-remote-https"] {
        let p = Path::new("/usr/lib/git-core").join(helper);
        if p.exists() {
            fs.add_binary(&format!("/usr/lib/git-core/{helper}"), &p)?;
        }
    }
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        fs.add_file(
            "/etc/ssl/certs/ca-certificates.crt",
            Path::new("/etc/ssl/certs/ca-certificates.crt"),
        );
    }
    Ok(fs)
}

/// Assembles one image's root filesystem.
type Assemble = fn() -> Result<Rootfs, String>;

/// Builds the images asked for (skipping those present when `if_missing`), telling
/// `progress` what it does. Returns the names built.
pub async fn build(
    engine: &Engine,
    which: Which,
    if_missing: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<String>, ContainerError> {
    let mut built = Vec::new();
    let plan: Vec<(&str, Assemble, Vec<String>)> = match which {
        Which::Sandbox => vec![(SANDBOX_IMAGE, sandbox_rootfs, vec![])],
        Which::Server => vec![(
            SERVER_IMAGE,
            server_rootfs,
            vec![r#"ENTRYPOINT ["/usr/local/bin/ecca"]"#.into()],
        )],
        Which::Both => vec![
            (SANDBOX_IMAGE, sandbox_rootfs, vec![]),
            (
                SERVER_IMAGE,
                server_rootfs,
                vec![r#"ENTRYPOINT ["/usr/local/bin/ecca"]"#.into()],
            ),
        ],
    };
    for (name, assemble, mut changes) in plan {
        let sandbox = name == SANDBOX_IMAGE;
        let mut tools_label = String::from("none");
        if sandbox {
            if super::node_tools::installed().is_none() {
                progress("node tools: installing them from npm into the cache (once)");
            }
            let tools = tokio::task::spawn_blocking(|| {
                let lines = std::sync::Mutex::new(Vec::new());
                let result = super::node_tools::ensure(&|l: &str| {
                    if let Ok(mut v) = lines.lock() {
                        v.push(l.to_string());
                    }
                });
                (result, lines.into_inner().unwrap_or_default())
            })
            .await
            .map_err(|e| ContainerError(format!("installing the node tools crashed: {e}")))?;
            let (tools, lines) = tools;
            for line in &lines {
                progress(line);
            }
            match tools {
                Ok(_) => tools_label = super::node_tools::pins_id(),
                Err(why) => progress(&format!(
                    "node tools: skipped: {why}; TypeScript and React Native lint and tests will say skipped"
                )),
            }
            changes.push(format!("LABEL {}={tools_label}", super::node_tools::LABEL));
        }
        if if_missing && engine.image_exists(name).await {
            let current = engine.image_label(name, super::node_tools::LABEL).await;
            if !sandbox || current.as_deref() == Some(tools_label.as_str()) {
                progress(&format!("{name}: already present"));
                continue;
            }
            progress(&format!(
                "{name}: present, but its node tools are {} and these are {tools_label}: building it again",
                current.as_deref().unwrap_or("none")
            ));
        }
        progress(&format!("{name}: assembling the root filesystem"));
        let tar = tokio::task::spawn_blocking(move || assemble().and_then(|fs| fs.to_tar()))
            .await
            .map_err(|e| ContainerError(format!("assembling {name} crashed: {e}")))?
            .map_err(ContainerError)?;
        progress(&format!(
            "{name}: importing {} MiB",
            tar.len() / (1024 * 1024)
        ));
        let (repo, tag) = name.split_once(':').unwrap_or((name, "latest"));
        engine.import_rootfs(tar, repo, tag, changes).await?;
        progress(&format!("{name}: built"));
        built.push(name.to_string());
    }
    Ok(built)
}
