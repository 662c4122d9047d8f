//! The embedded store: one SQLite file in WAL mode. Schema comes from `migrations/`, applied
//! at open. All writes go through one writer thread ([`writer`]) that batches them into
//! transactions; reads use their own connection, which WAL lets run beside the writer.

mod batches;
mod money;
mod queries;
mod records;
mod writer;

pub use batches::BatchRecord;
pub use money::{CostGroup, Decision, MonthTask};
pub use records::{
    BUDGET_KIND_CLIENT, BUDGET_KIND_TASK, BudgetChangeRecord, ClientRecord, ClientSpend, CostRow,
    CostTotals, RunRecord, TaskRecord,
};
pub use writer::{WriteOp, insert_cost_row};

use include_dir::{Dir, include_dir};
use rusqlite::Connection;
use rusqlite_migration::Migrations;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

static MIGRATIONS_DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The store's file name inside the data dir.
pub const DB_FILE: &str = "ecca.db";

/// A store failure, as a sentence: what failed, on what, and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    fn sql(what: &str, e: rusqlite::Error) -> Self {
        let hint = advice(&e)
            .map(|advice| format!("; {advice}"))
            .unwrap_or_default();
        StoreError(format!("{what} failed in the store: {e}{hint}"))
    }
}

/// What the operator can do about an SQLite failure that is not a bug in ecca.
fn advice(e: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode;
    Some(match e.sqlite_error_code()? {
        ErrorCode::DiskFull | ErrorCode::SystemIoFailure => {
            "check that the disk holding the data dir has free space and reports no errors"
        }
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            "the store file is damaged: move it aside and restore a backup"
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "another program holds the store locked; close it"
        }
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen => {
            "check that the data dir and its files are writable by this user"
        }
        _ => return None,
    })
}

/// Cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: writer::WriterHandle,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        create_private_file(&path)?;
        let mut conn = open_connection(&path)?;
        let migrations = Migrations::from_directory(&MIGRATIONS_DIR)
            .map_err(|e| StoreError(format!("the built-in migrations are unreadable: {e}")))?;
        migrations.to_latest(&mut conn).map_err(|e| match &e {
            rusqlite_migration::Error::RusqliteError { err, .. } => cannot_open(&path, err),
            _ => StoreError(format!(
                "could not bring the store {} up to date: {e}; is it from a newer ecca?",
                path.display()
            )),
        })?;
        let writer_conn = open_connection(&path)?;
        let writer = writer::WriterHandle::spawn(writer_conn)?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                path,
                reader: Mutex::new(conn),
                writer,
            }),
        })
    }

    /// Path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commits `ops` in one transaction (possibly together with other callers' ops) and
    /// returns once they are durable in the WAL. All of `ops` commit, or none.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.writer.write(ops).await
    }

    /// Queues `ops` without waiting for the commit; a failure is logged.
    pub async fn write_later(&self, ops: Vec<WriteOp>) {
        self.inner.writer.write_later(ops).await
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(Vec::new()).await
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the reader cannot leave a half-read connection: reads
        // do not mutate it, so a poisoned lock is safe to take over.
        self.inner
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Creates `dir` (and missing parents) readable by this user only: the store holds
/// clients' budgets and spend, and the logs what the agents did. An existing dir is left as
/// the operator made it.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            StoreError(format!(
                "could not create the data directory {}: {e}; choose another with --data-dir",
                dir.display()
            ))
        })
}

/// Creates the store file readable by this user only, before SQLite creates it with the
/// umask's mode (SQLite gives its WAL and shared-memory files the same mode).
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError(format!(
            "could not create the store {}: {e}; check that the data dir is writable by this user, or choose another with --data-dir",
            path.display()
        ))),
    }
}

/// The sentence for a store that cannot be opened: which file, why, and what to do.
fn cannot_open(path: &Path, e: &rusqlite::Error) -> StoreError {
    let file = path.display();
    let why = if path.is_dir() {
        "it is a directory, not a file".to_string()
    } else {
        e.to_string()
    };
    let todo = if path.is_dir() {
        "move it aside, or choose another data dir with --data-dir"
    } else {
        advice(e).unwrap_or(
            "check the path and its permissions, or choose another data dir with --data-dir",
        )
    };
    StoreError(format!("could not open the store {file}: {why}; {todo}"))
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| cannot_open(path, &e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
        .and_then(|_| conn.busy_timeout(std::time::Duration::from_secs(10)))
        .map_err(|e| cannot_open(path, &e))?;
    Ok(conn)
}
