//! The tool's one error type and its exit statuses: 2 for usage errors, 1 for failures,
//! 130 for Ctrl-C (128 + SIGINT, as shells report it).

use std::fmt;

/// Why a command stopped.
#[derive(Debug)]
pub enum CliError {
    /// The command line asks for something impossible (exit status 2).
    Usage(String),
    /// The work failed (exit status 1).
    Fail(String),
    /// A library error (exit status 1): its message names the file.
    Lib(outcore::Error),
    /// Interrupted by SIGINT or SIGTERM; temporary files were removed (exit status 130).
    Cancelled,
}

/// `Result<T, CliError>`.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Fail(_) | CliError::Lib(_) => 1,
            CliError::Cancelled => 130,
        }
    }
}

impl From<outcore::Error> for CliError {
    fn from(e: outcore::Error) -> CliError {
        match e {
            outcore::Error::Cancelled => CliError::Cancelled,
            e => CliError::Lib(e),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Fail(m) => f.write_str(m),
            CliError::Lib(e) => write!(f, "{e}"),
            CliError::Cancelled => f.write_str("interrupted; temporary files removed"),
        }
    }
}

/// A usage error (exit status 2).
pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// A failure (exit status 1).
pub fn fail(msg: impl Into<String>) -> CliError {
    CliError::Fail(msg.into())
}
