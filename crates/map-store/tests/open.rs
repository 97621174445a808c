//! Opening: header, refusal of foreign/garbage/damaged/newer files, and
//! unwritable locations.

mod common;

use common::*;
use map_store::{APPLICATION_ID, SCHEMA_VERSION, Store, StoreError};

#[test]
fn fresh_open_creates_dir_and_stamps_header() {
    let (_d, path) = temp_db();
    assert!(!path.parent().unwrap().exists());
    let store = Store::open(&path).unwrap();
    assert!(path.exists());
    assert!(!store.is_read_only());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let ver: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(app, APPLICATION_ID);
    assert_eq!(ver, SCHEMA_VERSION);
    assert_eq!(mode, "wal");
    // Reopening is fine and keeps data.
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(get_i64(&load(&store, PLAN), "k"), Some(1));
}

#[test]
fn foreign_sqlite_database_is_refused() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY);")
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("is not a map database (it belongs to another program)"),
        "{msg}"
    );
    assert!(msg.contains("MAP_HOME"), "{msg}");
    assert!(err.is_unusable_file());
    // The file was not touched (no map tables added).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn other_application_id_is_refused() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "application_id", 0x1234_5678)
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
}

#[test]
fn garbage_file_is_refused() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        b"this is a plain text file, not a database at all....\n".repeat(100),
    )
    .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotSqlite { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a map database"), "{err}");
    // Read-only open says the same.
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotSqlite { .. }), "{err:?}");
}

#[test]
fn damaged_sqlite_file_is_reported_as_damaged() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB_u8, 8192));
    std::fs::write(&path, bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("is damaged"), "{err}");
}

#[test]
fn newer_schema_is_refused() {
    let (_d, path) = temp_db();
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 98)
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema { found, known, .. } => {
            assert_eq!(*found, SCHEMA_VERSION + 98);
            assert_eq!(*known, SCHEMA_VERSION);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("made by a newer map"), "{msg}");
    assert!(
        msg.contains(&format!(
            "schema {}, this map knows {}",
            SCHEMA_VERSION + 98,
            SCHEMA_VERSION
        )),
        "{msg}"
    );
    assert!(msg.ends_with("upgrade map"), "{msg}");
    assert!(matches!(
        Store::open_read_only(&path).unwrap_err(),
        StoreError::NewerSchema { .. }
    ));
}

#[test]
fn empty_existing_file_is_initialised() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
}

// Tests run as root, so permission bits do not stop writes. What can be
// tested: a directory that cannot be created (under /proc, or below a regular
// file), a database path that is a directory, and writes through a read-only
// connection (SQLITE_READONLY), which is what a read-only file system or
// a file without write permission produces for a non-root user.

#[test]
fn uncreatable_directory_gives_cannot_write() {
    let err = Store::open("/proc/map-store-test-no-such-dir/map.db").unwrap_err();
    match &err {
        StoreError::CannotWrite { dir, .. } => {
            assert_eq!(
                dir,
                std::path::Path::new("/proc/map-store-test-no-such-dir")
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("cannot write to /proc/map-store-test-no-such-dir: "),
        "{err}"
    );
}

#[test]
fn directory_below_a_file_gives_cannot_write() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(file.join("home").join("map.db")).unwrap_err();
    assert!(matches!(err, StoreError::CannotWrite { .. }), "{err:?}");
}

#[test]
fn uncreatable_file_in_existing_dir_gives_cannot_write() {
    // /proc exists but no file can be created in it, even by root.
    let err = Store::open("/proc/map-store-test.db").unwrap_err();
    assert!(matches!(err, StoreError::CannotWrite { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot write to /proc: "),
        "{err}"
    );
}

#[test]
fn path_that_is_a_directory_gives_cannot_write() {
    let (_d, path) = temp_db();
    std::fs::create_dir_all(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::CannotWrite { .. }), "{err:?}");
}

#[test]
fn read_only_store_reads_but_refuses_writes() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    store.write(|tx| tx.set_setting("a", "b")).unwrap();

    let mut ro = Store::open_read_only(&path).unwrap();
    assert!(ro.is_read_only());
    assert_eq!(get_i64(&load(&ro, PLAN), "k"), Some(1));
    let err = ro.write(|tx| tx.set_setting("a", "c")).unwrap_err();
    assert!(matches!(err, StoreError::CannotWrite { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot write to "), "{err}");
    assert_eq!(
        store.read(|tx| tx.get_setting("a")).unwrap().as_deref(),
        Some("b")
    );
}

#[test]
fn read_only_open_of_missing_file() {
    let (_d, path) = temp_db();
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(!path.exists(), "read-only open must not create anything");
}

#[test]
fn open_and_get_view_are_fast() {
    let (_d, path) = temp_db();
    let mut store = Store::open(&path).unwrap();
    edit_in_store(&mut store, PLAN, "k", 1);
    let view = vec![7u8; 20_000];
    store
        .write(|tx| {
            let heads = tx.doc_heads(PLAN)?.unwrap_or_default();
            tx.put_view(PLAN, &heads, &view)
        })
        .unwrap();
    drop(store);
    // Warm the page cache, then measure the best of a few runs.
    let mut best = std::time::Duration::MAX;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let store = Store::open(&path).unwrap();
        let v = store.read(|tx| tx.get_view(PLAN)).unwrap().unwrap();
        assert!(v.is_current());
        assert_eq!(v.view.len(), 20_000);
        drop(store);
        best = best.min(t.elapsed());
    }
    eprintln!("open + get_view + close: best {best:?}");
    // Generous bound for unoptimised test builds on a loaded machine; the
    // figure printed above is what matters (well under 1 ms in practice).
    assert!(best < std::time::Duration::from_millis(20), "{best:?}");
}
