//! Errors of the store, each with a message that tells the user what happened
//! and what to do about it.
//!
//! SQLite reports failures as result codes; [`classify`] turns the ones a user
//! can act on (not a database, damaged, read-only, disk full, locked) into
//! their own variants, so the CLI can print the message as it is.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong while opening or using the store.
///
/// Variant fields are the file or directory concerned (`path`, `dir`), the
/// document id, schema versions and SQLite's own wording (`detail`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum StoreError {
    /// The file exists but is not an SQLite database at all.
    #[error(
        "{} is not a map database (it is not an SQLite database); point MAP_HOME at another directory",
        path.display()
    )]
    NotSqlite { path: PathBuf },

    /// The file is an SQLite database made by some other program.
    #[error(
        "{} is not a map database (it belongs to another program); point MAP_HOME at another directory",
        path.display()
    )]
    Foreign { path: PathBuf },

    /// The file is a map database but SQLite found it damaged.
    #[error(
        "{} is damaged ({detail}); restore it from a backup, or move it aside and sync your plans again from a relay",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },

    /// The database was written by a newer map with a schema this one does not know.
    #[error(
        "{} was made by a newer map (schema {found}, this map knows {known}); upgrade map",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// A read-only open found a database that still needs a schema upgrade
    /// (or was never initialised); only a read-write open can do that.
    #[error(
        "{} has schema {found} and needs an upgrade to {known}; run a map command that changes something (or open it read-write) first",
        path.display()
    )]
    NeedsUpgrade {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// A read-only open of a file that does not exist.
    #[error("{} does not exist (no map database yet)", path.display())]
    NotFound { path: PathBuf },

    /// The directory (or the database in it) cannot be written: read-only
    /// file system, permissions, or the path runs through a regular file.
    #[error("cannot write to {}: {detail}", dir.display())]
    CannotWrite { dir: PathBuf, detail: String },

    /// The disk filled up during a write; the transaction was rolled back.
    #[error(
        "disk full while writing {}; nothing was changed. Free some space and try again",
        path.display()
    )]
    DiskFull { path: PathBuf },

    /// Another process held the write lock for longer than the busy timeout.
    #[error(
        "{} is busy: another map process has held it for more than {secs} s; try again when it has finished",
        path.display()
    )]
    Busy { path: PathBuf, secs: u64 },

    /// A stored Automerge document (or a stored head list) could not be read.
    #[error(
        "document {id} in {} is damaged and cannot be loaded ({detail}); delete it and sync it again from a relay",
        path.display()
    )]
    BadDocument {
        path: PathBuf,
        id: String,
        detail: String,
    },

    /// `add_remote` with a name that is already taken.
    #[error("a remote named {name:?} already exists; remove it first or choose another name")]
    RemoteExists { name: String },

    /// Any other SQLite failure (a bug or an unusual environment).
    #[error("database error in {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// True for errors that mean "this file is not usable as a map database"
    /// (not SQLite, foreign, damaged, newer schema).
    pub fn is_unusable_file(&self) -> bool {
        matches!(
            self,
            StoreError::NotSqlite { .. }
                | StoreError::Foreign { .. }
                | StoreError::Corrupt { .. }
                | StoreError::NewerSchema { .. }
        )
    }
}

/// Busy timeout used by every connection (also quoted in [`StoreError::Busy`]).
pub(crate) const BUSY_TIMEOUT_SECS: u64 = 30;

/// The directory shown in "cannot write to DIR" messages.
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Turn an SQLite error about the database at `path` into a [`StoreError`].
pub(crate) fn classify(path: &Path, err: rusqlite::Error) -> StoreError {
    let code = match &err {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    };
    let detail = || match &err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => format!("{msg} ({e})"),
        other => other.to_string(),
    };
    match code {
        Some(ErrorCode::NotADatabase) => {
            if has_sqlite_magic(path) {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: detail(),
                }
            } else {
                StoreError::NotSqlite {
                    path: path.to_path_buf(),
                }
            }
        }
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: detail(),
        },
        Some(ErrorCode::DiskFull) => StoreError::DiskFull {
            path: path.to_path_buf(),
        },
        // SQLite reports a full disk met while growing the shared-memory
        // index (or a WAL write) as a plain I/O error: find out whether the
        // directory has room left.
        Some(ErrorCode::SystemIoFailure) if dir_is_full(&dir_of(path)) => StoreError::DiskFull {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy {
            path: path.to_path_buf(),
            secs: BUSY_TIMEOUT_SECS,
        },
        Some(ErrorCode::ReadOnly)
        | Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied)
        | Some(ErrorCode::AuthorizationForStatementDenied) => StoreError::CannotWrite {
            dir: dir_of(path),
            detail: detail(),
        },
        _ => StoreError::Sqlite {
            path: path.to_path_buf(),
            source: err,
        },
    }
}

/// Whether writing a small file in `dir` fails because the disk is full.
/// Only called on the error path.
fn dir_is_full(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join(format!(".map-space-probe-{}", std::process::id()));
    let res = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    matches!(res, Err(e) if e.kind() == std::io::ErrorKind::StorageFull)
}

/// Whether the file at `path` starts with the SQLite header string. Only
/// called on the error path, to tell "garbage" from "damaged SQLite".
fn has_sqlite_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut f) => f.read_exact(&mut buf).is_ok() && &buf == b"SQLite format 3\0",
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_error_works_with_anyhow_style_callers() {
        fn assert_bounds<T: Send + Sync + std::error::Error + 'static>() {}
        assert_bounds::<StoreError>();
    }

    #[test]
    fn sqlite_codes_map_to_actionable_variants() {
        let p = Path::new("/home/ada/.map/map.db");
        let err = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert!(matches!(
            classify(p, err(rusqlite::ffi::SQLITE_FULL)),
            StoreError::DiskFull { .. }
        ));
        assert!(matches!(
            classify(p, err(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Busy { secs: 30, .. }
        ));
        let e = classify(p, err(rusqlite::ffi::SQLITE_READONLY));
        assert!(
            e.to_string()
                .starts_with("cannot write to /home/ada/.map: "),
            "{e}"
        );
        assert!(matches!(
            classify(p, err(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt { .. }
        ));
        // NOTADB on a file that does not start with the SQLite magic.
        assert!(matches!(
            classify(p, err(rusqlite::ffi::SQLITE_NOTADB)),
            StoreError::NotSqlite { .. }
        ));
        let busy = classify(p, err(rusqlite::ffi::SQLITE_BUSY)).to_string();
        assert!(busy.contains("another map process"), "{busy}");
    }
}
