//! One supervisor per data dir: an exclusive lock on `ecca.lock`, released by the OS when
//! the process ends, however it ends.

use super::SupervisorError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub(super) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub(super) fn acquire(data_dir: &Path) -> Result<DataDirLock, SupervisorError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            SupervisorError(format!(
                "could not create the data directory {}: {e}; choose another with --data-dir",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("ecca.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| SupervisorError(format!("could not open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(SupervisorError(format!(
                    "another ecca (pid {}) is supervising runs in {}; wait for it to finish or stop it first",
                    holder.trim(),
                    data_dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(SupervisorError(format!(
                    "could not lock {}: {e}",
                    path.display()
                )));
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock { _file: file })
    }
}
