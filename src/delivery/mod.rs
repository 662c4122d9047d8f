//! Delivery after approval. A task on a client with a repository is delivered as branch
//! `agt/<task>` and a pull request whose body carries the evidence ([`pr_body`]), after a
//! risk score and secret scan of its diff ([`risk`], [`secrets_scan`]). A task with no
//! repository becomes a tar.gz bundle in the data dir, written beside its final name and
//! renamed into place, so a crash never leaves half a deliverable behind.

pub mod pr_body;
pub mod risk;
pub mod secrets_scan;

use crate::engine::fsm::DeliverableFile;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What goes into the bundle's `MANIFEST.md` besides the files.
pub struct BundleInfo<'a> {
    pub task_id: &'a str,
    pub title: &'a str,
    pub client_id: &'a str,
    pub quality_score: Option<f64>,
    pub cost_micros: i64,
    /// Some of the cost is an estimate: a provider reported no usage for a call.
    pub cost_estimated: bool,
    pub simulated: bool,
    pub skipped: &'a [String],
}

/// Writes `deliveries/<task>.tar.gz` under `data_dir` and returns its path.
pub fn write_bundle(
    data_dir: &Path,
    info: &BundleInfo<'_>,
    files: &[DeliverableFile],
) -> Result<PathBuf, String> {
    let dir = data_dir.join("deliveries");
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    let final_path = dir.join(format!("{}.tar.gz", info.task_id));
    let partial = dir.join(format!(".{}.tar.gz.partial", info.task_id));
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&partial)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
        let mut add = |path: &str, content: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, format!("{}/{path}", info.task_id), content)
        };
        add("MANIFEST.md", manifest(info, files).as_bytes())?;
        for f in files {
            add(&f.path, f.content.as_bytes())?;
        }
        let mut gz = tar.into_inner()?;
        gz.flush()?;
        let file = gz.finish()?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "could not write the bundle {}: {e}",
            final_path.display()
        ));
    }
    std::fs::rename(&partial, &final_path).map_err(|e| {
        format!(
            "could not move the bundle into place at {}: {e}",
            final_path.display()
        )
    })?;
    Ok(final_path)
}

fn manifest(info: &BundleInfo<'_>, files: &[DeliverableFile]) -> String {
    let mut m = format!(
        "# {} — {}\n\nclient: {}\n",
        info.task_id, info.title, info.client_id
    );
    m.push_str(&format!(
        "quality score: {}\ncost: {}{}{}\n",
        info.quality_score
            .map(|s| format!("{s:.1}/10"))
            .unwrap_or_else(|| "-".into()),
        if info.cost_estimated { "~" } else { "" },
        crate::money::format_usd(info.cost_micros),
        if info.simulated {
            " (simulated: written by the offline model)"
        } else {
            ""
        }
    ));
    if !info.skipped.is_empty() {
        m.push_str("\nNot verified (steps skipped):\n");
        for s in info.skipped {
            m.push_str(&format!("- {s}\n"));
        }
    }
    m.push_str("\nFiles:\n");
    for f in files {
        m.push_str(&format!(
            "- {} ({} lines)\n",
            f.path,
            f.content.lines().count()
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bundle_holds_manifest_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let info = BundleInfo {
            task_id: "T-0001",
            title: "hello",
            client_id: "acme",
            quality_score: Some(7.0),
            cost_micros: 1234,
            cost_estimated: false,
            simulated: true,
            skipped: &["lint: no linter server configured".to_string()],
        };
        let files = vec![DeliverableFile {
            path: "main.py".into(),
            content: "print('hi')\n".into(),
        }];
        let path = write_bundle(dir.path(), &info, &files).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&path).unwrap(),
        ));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), body));
        }
        assert_eq!(seen[0].0, "T-0001/MANIFEST.md");
        assert!(
            seen[0].1.contains("simulated")
                && seen[0].1.contains("lint: no linter server configured")
        );
        assert_eq!(
            seen[1],
            ("T-0001/main.py".to_string(), "print('hi')\n".to_string())
        );
        assert!(
            !dir.path()
                .join("deliveries/.T-0001.tar.gz.partial")
                .exists()
        );
    }
}
