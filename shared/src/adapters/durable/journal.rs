//! The journal: every change to the embedded store, in the order it was made, in one SQLite
//! file. Writers hand records to a single writer thread, which commits whatever has gathered
//! since its last commit as one row in one transaction (group commit): one `fsync` covers every
//! join, claim and revocation that arrived while the previous one ran, so a caller waits at
//! most about two disk syncs and throughput grows with concurrency instead of being capped at
//! one sync per visitor.
//!
//! SQLite runs in WAL mode with `synchronous=FULL` (a commit is on disk, not only in the page
//! cache, when it returns: a join answered `202` survives a power cut as well as `kill -9`) and
//! `locking_mode=EXCLUSIVE` (a second process on the same directory is refused instead of
//! writing a second history into the same file; the OS drops the lock when a process dies).
//!
//! Records are the domain types in their serde (JSON) form, so the file can be read with
//! `sqlite3` and `jq`; a field added to a recorded type needs `#[serde(default)]` for journals
//! written before it to replay.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

use super::record::Record;
use crate::ports::StoreError;

/// Version of the journal's layout, kept in SQLite's `user_version`.
const FORMAT: i64 = 1;

/// Rows read at a time on replay: bounds what a replay holds beyond the store itself.
const REPLAY_PAGE: i64 = 64;

/// How long opening waits for another process to let go of the file before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A place in the journal: every record appended up to it is committed once it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Ticket(u64);

/// What the writer has done so far.
#[derive(Debug, Clone)]
struct Progress {
    committed: u64,
    /// Set when a commit failed: the store stops taking changes (see [`Journal::append`]).
    failure: Option<Arc<str>>,
}

/// Records appended and not yet taken by the writer.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    /// Number of the last record appended (records are numbered from 1).
    last: u64,
    closing: bool,
}

struct Shared {
    // std Mutex: held only to push or take records, never across an `.await` or a commit.
    pending: Mutex<Pending>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
}

pub(super) struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn unavailable(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{context}: {error}"))
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("journal lock poisoned".into())
}

/// The journal as found on disk, read before the store takes changes.
pub(super) struct JournalReader {
    connection: Connection,
    path: std::path::PathBuf,
    /// Rows read and not yet handed out, oldest first.
    page: std::collections::VecDeque<(i64, Vec<u8>)>,
    /// The last row read.
    after: i64,
}

impl JournalReader {
    /// Opens the journal file, creating it.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            connection: connect(path)?,
            path: path.to_owned(),
            page: Default::default(),
            after: 0,
        })
    }

    /// The records of the next commit, in the order they were made; `None` after the last.
    pub(super) fn next_commit(&mut self) -> Result<Option<Vec<Record>>, StoreError> {
        if self.page.is_empty() {
            self.page = read_page(&self.connection, self.after)?.into();
        }
        let Some((seq, bytes)) = self.page.pop_front() else {
            return Ok(None);
        };
        self.after = seq;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError::Corrupt(format!("journal row {seq} of {}: {e}", self.path.display()))
        })
    }

    /// Starts the writer: from here on the journal takes new records.
    pub(super) fn into_journal(self) -> Result<Journal, StoreError> {
        let (progress, _) = watch::channel(Progress {
            committed: 0,
            failure: None,
        });
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            progress,
        });
        let connection = self.connection;
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || write_until_closed(connection, &shared))
                .map_err(|e| unavailable("cannot start the journal writer", e))?
        };
        Ok(Journal {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }
}

impl Journal {
    /// Queues `record` behind every record appended before it. The caller orders appends
    /// itself (the store appends under its own lock, in the order it applied the changes).
    pub(super) fn append(&self, record: Record) -> Result<Ticket, StoreError> {
        if let Some(failure) = &self.shared.progress.borrow().failure {
            return Err(StoreError::Unavailable(failure.to_string()));
        }
        let mut pending = self.shared.pending.lock().map_err(|_| poisoned())?;
        if pending.closing {
            return Err(StoreError::Unavailable("journal closed".into()));
        }
        pending.records.push(record);
        pending.last += 1;
        let ticket = Ticket(pending.last);
        drop(pending);
        self.shared.wake.notify_one();
        Ok(ticket)
    }

    /// The place of the last record appended: waiting for it makes sure that whatever a
    /// caller read is on disk (a token found already claimed, a session already ended).
    pub(super) fn last(&self) -> Result<Ticket, StoreError> {
        let pending = self.shared.pending.lock().map_err(|_| poisoned())?;
        Ok(Ticket(pending.last))
    }

    /// Waits until every record up to `ticket` is committed.
    pub(super) async fn committed(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut progress = self.shared.progress.subscribe();
        let progress = progress
            .wait_for(|p| p.committed >= ticket.0 || p.failure.is_some())
            .await
            .map_err(|_| StoreError::Unavailable("journal writer stopped".into()))?;
        match &progress.failure {
            Some(failure) if progress.committed < ticket.0 => {
                Err(StoreError::Unavailable(failure.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Commits what is queued, stops the writer and lets go of the file.
    pub(super) fn close(&self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.closing = true;
        }
        self.shared.wake.notify_one();
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the journal writer panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens the file with the settings the module head explains and checks its format.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let cannot = |what: &str, e: rusqlite::Error| unavailable(&format!("{what} {name}"), e);
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| cannot("cannot open", e))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| cannot("cannot set up", e))?;
    // Exclusive locking before WAL: SQLite then needs no shared-memory index beside the file.
    for (pragma, wanted) in [("locking_mode", "exclusive"), ("journal_mode", "wal")] {
        let mode: String = connection
            .query_row(&format!("PRAGMA {pragma} = {wanted}"), [], |row| row.get(0))
            .map_err(|e| in_use_or(&name, e))?;
        if !mode.eq_ignore_ascii_case(wanted) {
            return Err(StoreError::Unavailable(format!(
                "{name}: SQLite kept {pragma} {mode}, not {wanted}"
            )));
        }
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(|e| cannot("cannot set up", e))?;
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| in_use_or(&name, e))?;
    if version > FORMAT {
        return Err(StoreError::Corrupt(format!(
            "{name} has journal format {version}; this build reads up to {FORMAT}"
        )));
    }
    // A write takes the exclusive lock now, so a second server on this directory fails here.
    connection
        .execute_batch(&format!(
            "BEGIN IMMEDIATE; \
             CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, records BLOB NOT NULL); \
             PRAGMA user_version = {FORMAT}; COMMIT;"
        ))
        .map_err(|e| in_use_or(&name, e))?;
    Ok(connection)
}

/// A busy database means another process holds the directory: say so plainly.
fn in_use_or(name: &str, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!(
                "{name} is in use by another process (one server per data directory)"
            ))
        }
        _ => unavailable(&format!("cannot read {name}"), error),
    }
}

/// Up to [`REPLAY_PAGE`] rows after `after`, oldest first.
fn read_page(connection: &Connection, after: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT seq, records FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(|e| unavailable("cannot read the journal", e))?;
    let rows = statement
        .query_map([after, REPLAY_PAGE], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(|e| unavailable("cannot read the journal", e))?;
    let page = rows
        .collect::<Result<_, _>>()
        .map_err(|e| unavailable("cannot read the journal", e))?;
    Ok(page)
}

/// The writer thread: commits what gathered, one row per commit, until closed. A failed
/// commit stops it for good: the records in memory are then ahead of the disk, and callers
/// must hear that their change is not kept (`503`) rather than be answered as if it were.
fn write_until_closed(connection: Connection, shared: &Shared) {
    loop {
        let (records, last) = {
            let Ok(mut pending) = shared.pending.lock() else {
                return fail(shared, "journal lock poisoned".into());
            };
            while pending.records.is_empty() && !pending.closing {
                pending = match shared.wake.wait(pending) {
                    Ok(pending) => pending,
                    Err(_) => return fail(shared, "journal lock poisoned".into()),
                };
            }
            if pending.records.is_empty() {
                return;
            }
            (std::mem::take(&mut pending.records), pending.last)
        };
        let written = serde_json::to_vec(&records)
            .map_err(|e| format!("cannot encode journal records: {e}"))
            .and_then(|bytes| {
                connection
                    .execute("INSERT INTO journal (records) VALUES (?1)", [bytes])
                    .map_err(|e| format!("cannot write the journal: {e}"))
            });
        match written {
            Ok(_) => shared.progress.send_modify(|p| p.committed = last),
            Err(error) => return fail(shared, error),
        }
    }
}

fn fail(shared: &Shared, error: String) {
    tracing::error!(%error, "the journal stopped: changes are refused until a restart");
    shared
        .progress
        .send_modify(|p| p.failure = Some(error.into()));
}
