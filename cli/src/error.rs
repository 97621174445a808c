//! The CLI's one error type, its exit codes, and how it is printed.
//!
//! Every failure is printed as `error: WHAT` on stderr, followed by a
//! `hint: WHAT TO DO` line when there is something to do. The libraries'
//! messages follow the convention "what went wrong; what to do", so the part
//! after the first `"; "` becomes the hint.
//!
//! Exit codes: 1 user error, 2 usage error (clap, printed by clap), 3 sync or
//! network failure.

use std::fmt;
use std::io::Write;

use map_model::ModelError;
use map_model::dates::DateError;
use map_model::filter::FilterError;
use map_store::StoreError;

/// Exit code of a user error.
pub const EXIT_USER: u8 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a network or sync failure.
pub const EXIT_NETWORK: u8 = 3;

/// What kind of failure, which picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input, missing data, unusable database: exit 1.
    User,
    /// Network or sync failure: exit 3.
    #[allow(dead_code)] // used by the network commands (net.rs)
    Network,
}

/// An error to report to the user.
#[derive(Debug)]
pub struct CliError {
    /// Set when writing to stdout failed because the reader went away
    /// (`map show | head`): not worth a message.
    pub broken_pipe: bool,
    /// Exit code class.
    pub kind: ErrorKind,
    /// What went wrong (one sentence, no trailing period needed).
    pub message: String,
    /// What to do about it.
    pub hints: Vec<String>,
}

/// Result alias for the CLI.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// A user error; a `"; "` in `message` splits off a hint.
    pub fn user(message: impl Into<String>) -> CliError {
        let message = message.into();
        match message.split_once("; ") {
            Some((what, hint)) => CliError {
                broken_pipe: false,
                kind: ErrorKind::User,
                message: what.to_string(),
                hints: vec![hint.to_string()],
            },
            None => CliError {
                broken_pipe: false,
                kind: ErrorKind::User,
                message,
                hints: Vec::new(),
            },
        }
    }

    /// A network or sync failure (exit 3).
    #[allow(dead_code)] // used by the network commands (net.rs)
    pub fn network(message: impl Into<String>) -> CliError {
        CliError {
            kind: ErrorKind::Network,
            ..CliError::user(message)
        }
    }

    /// Add a hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    /// Whether this is a write to a closed pipe.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::User => EXIT_USER,
            ErrorKind::Network => EXIT_NETWORK,
        }
    }

    /// Print `error:` and `hint:` lines to stderr.
    pub fn print(&self) {
        let mut err = anstream::stderr().lock();
        let red = anstyle::Style::new()
            .bold()
            .fg_color(Some(anstyle::AnsiColor::Red.into()));
        let cyan = anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Cyan.into()));
        let _ = writeln!(err, "{red}error:{red:#} {}", self.message);
        for h in &self.hints {
            let _ = writeln!(err, "{cyan}hint:{cyan:#} {h}");
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for h in &self.hints {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

impl From<ModelError> for CliError {
    fn from(e: ModelError) -> CliError {
        let hint = match &e {
            ModelError::Empty(_) => Some("give a non-empty value"),
            ModelError::SelfDependency(_) => Some("pick two different tasks"),
            ModelError::InvalidDocumentId(_) => Some("list plans with `map plans`"),
            ModelError::NotAPlan(_) => {
                Some("this document was not made by map; check the id or URL")
            }
            _ => None,
        };
        let mut err = CliError::user(e.to_string());
        if let Some(h) = hint
            && err.hints.is_empty()
        {
            err = err.hint(h);
        }
        err
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        let hint = match &e {
            StoreError::CannotWrite { .. } => Some(
                "check the permissions of the directory, or point MAP_HOME at a writable directory",
            ),
            StoreError::NotFound { .. } => Some("create a plan with `map init TITLE`"),
            _ => None,
        };
        let mut err = CliError::user(e.to_string());
        if let Some(h) = hint
            && err.hints.is_empty()
        {
            err = err.hint(h);
        }
        err
    }
}

impl From<DateError> for CliError {
    fn from(e: DateError) -> CliError {
        CliError::user(format!("invalid date '{}'", e.input))
            .hint(format!("use one of: {}", map_model::dates::ACCEPTED_FORMS))
    }
}

impl From<FilterError> for CliError {
    fn from(e: FilterError) -> CliError {
        let err = CliError::user(e.to_string());
        if err.hints.is_empty() {
            err.hint("see `map task list --help` for the filter syntax")
        } else {
            err
        }
    }
}

impl From<map_model::templates::UnknownTemplate> for CliError {
    fn from(e: map_model::templates::UnknownTemplate) -> CliError {
        CliError::user(e.to_string())
    }
}

impl From<map_export::ExportError> for CliError {
    fn from(e: map_export::ExportError) -> CliError {
        CliError::user(e.to_string())
    }
}

/// Wrap an I/O error with what was being done.
pub fn io_error(what: impl fmt::Display, e: std::io::Error) -> CliError {
    let mut err = CliError::user(format!("{what}: {e}"));
    err.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_is_split_off() {
        let e = CliError::user("no task matches 'x'; list tasks with `map task list`");
        assert_eq!(e.message, "no task matches 'x'");
        assert_eq!(e.hints, ["list tasks with `map task list`"]);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(CliError::network("down").exit_code(), 3);
    }
}
