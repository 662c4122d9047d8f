//! The embedded store: one SQLite file in WAL mode. Schema comes from `migrations/`, applied
//! at open. All writes go through one writer thread ([`writer`]) that batches them into
//! transactions; reads use their own connection, which WAL lets run beside the writer.

mod queries;
mod records;
mod writer;

pub use records::{ClientRecord, ClientSpend, CostRow, CostTotals, RunRecord, TaskRecord};
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
        StoreError(format!("{what} failed in the store: {e}"))
    }
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
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError(format!(
                "could not create the data directory {}: {e}; choose another with --data-dir",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = open_connection(&path)?;
        let migrations = Migrations::from_directory(&MIGRATIONS_DIR)
            .map_err(|e| StoreError(format!("the built-in migrations are unreadable: {e}")))?;
        migrations.to_latest(&mut conn).map_err(|e| {
            StoreError(format!(
                "could not bring the store {} up to date: {e}; is it from a newer ecca?",
                path.display()
            ))
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

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError(format!(
            "could not open the store {}: {e}; check the path and its permissions",
            path.display()
        ))
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
        .and_then(|_| conn.busy_timeout(std::time::Duration::from_secs(10)))
        .map_err(|e| {
            StoreError(format!(
                "could not configure the store {}: {e}",
                path.display()
            ))
        })?;
    Ok(conn)
}
