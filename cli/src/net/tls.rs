//! CA files for `wss://` relays with a private or self-signed CA.
//!
//! `map remote add|join|sync --relay ... --ca-file FILE` stores the file's
//! absolute path with the remote (setting `remote.NAME.ca_file`); the
//! `MAP_CA_FILE` environment variable applies to every relay without one.
//! The platform's root certificates are always trusted as well. Commands
//! look the file up by relay URL ([`ca_file_for`]), so every connection to a
//! relay (WebSocket and HTTP API) uses the same trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use map_store::{ReadTx, WriteTx};

use crate::error::{CliError, Result};

/// The environment variable naming a default CA file.
pub const ENV: &str = "MAP_CA_FILE";

/// Relay URL (as stored in a remote) -> CA file, for this process.
static CA_FILES: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

fn setting_key(remote: &str) -> String {
    format!("remote.{remote}.ca_file")
}

fn key_of(url: &str) -> String {
    crate::net::http_base(url)
}

/// Use `path` for connections to the relay at `url` in this process.
pub fn register(url: &str, path: &Path) {
    if let Ok(mut map) = CA_FILES.lock() {
        map.insert(key_of(url), path.to_path_buf());
    }
}

/// The CA file registered for `url` (stored or given on the command line).
pub fn registered(url: &str) -> Option<PathBuf> {
    CA_FILES
        .lock()
        .ok()
        .and_then(|map| map.get(&key_of(url)).cloned())
}

/// The CA file for the relay at `url`: the one stored with its remote (or
/// registered by this command), else `MAP_CA_FILE`.
pub fn ca_file_for(url: &str) -> Option<PathBuf> {
    registered(url).or_else(|| {
        std::env::var_os(ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Register the CA files stored with the remotes (called when the store is
/// opened).
pub fn load(tx: &ReadTx<'_>) -> Result<()> {
    for remote in tx.remotes()? {
        if let Some(path) = tx.get_setting(&setting_key(&remote.name))? {
            register(&remote.url, Path::new(&path));
        }
    }
    Ok(())
}

/// Check a `--ca-file` argument (readable, holds PEM certificates) and
/// return its absolute path.
pub fn check(path: &Path) -> Result<PathBuf> {
    map_sync::tls::load_ca_file(path).map_err(|e| {
        CliError::user(e.to_string()).hint("give a PEM file with the relay's CA certificate")
    })?;
    Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Store (or with `None`, keep) the CA file of remote `name` at `url`.
pub fn store(tx: &WriteTx<'_>, name: &str, url: &str, path: Option<&Path>) -> Result<()> {
    if let Some(path) = path {
        tx.set_setting(&setting_key(name), &path.to_string_lossy())?;
        register(url, path);
    }
    Ok(())
}

/// Forget the CA file of remote `name`.
pub fn forget(tx: &WriteTx<'_>, name: &str) -> Result<()> {
    tx.remove_setting(&setting_key(name))?;
    Ok(())
}

/// Whether a TLS failure of an HTTP call was the certificate: the message
/// to show, if so.
pub fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let rustls_err = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(map_sync::tls::rustls_error)
        });
        if let Some(rustls::Error::InvalidCertificate(why)) = rustls_err {
            return Some(why.to_string());
        }
        cur = err.source();
    }
    None
}
