//! Network commands: `map remote`, `map sync`, `map share`, `map join`,
//! `map demo`. Stubs for now; the sync engineer implements them with
//! `map_sync`, reusing `crate::context` (store, identity, actor, clock) and
//! `crate::plans::save_plan` to store merged documents.

use crate::cli::{RemoteCmd, ShareArgs, SyncArgs};
use crate::context::Context;
use crate::error::{CliError, Result};

fn not_yet(what: &str) -> CliError {
    CliError::user(format!("`map {what}` is not implemented yet"))
        .hint("this build of map works offline only")
}

/// `map remote add|list|remove`.
pub fn remote(_ctx: &mut Context, _cmd: RemoteCmd) -> Result<()> {
    Err(not_yet("remote"))
}

/// `map sync`.
pub fn sync(_ctx: &mut Context, _args: SyncArgs) -> Result<()> {
    Err(not_yet("sync"))
}

/// `map share`.
pub fn share(_ctx: &mut Context, _args: ShareArgs) -> Result<()> {
    Err(not_yet("share"))
}

/// `map join`.
pub fn join(_ctx: &mut Context, _invite: &str) -> Result<()> {
    Err(not_yet("join"))
}

/// `map demo`.
pub fn demo(_ctx: &mut Context) -> Result<()> {
    Err(not_yet("demo"))
}
