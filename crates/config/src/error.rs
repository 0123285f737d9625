//! The one error type of this crate: every variant names the file and, where the YAML gives
//! one, the line and column.

use std::fmt;
use std::path::{Path, PathBuf};

pub use serde_saphyr::Location;

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a file something was found: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    /// The position of a serde-saphyr location, if it is known.
    pub fn from_location(l: &Location) -> Option<Self> {
        (*l != Location::UNKNOWN && l.line() > 0).then(|| Position {
            line: l.line(),
            column: l.column(),
        })
    }
}

struct At<'a>(&'a Path, Option<Position>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_os_str().is_empty() {
            f.write_str("<input>")?;
        } else {
            write!(f, "{}", self.0.display())?;
        }
        if let Some(p) = self.1 {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        Ok(())
    }
}

/// A configuration error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML for its schema: bad syntax, a wrong type, an unknown or
    /// duplicated key.
    #[error("{}: {message}", At(path, *position))]
    Parse {
        path: PathBuf,
        position: Option<Position>,
        message: String,
    },
    /// The file parsed but a value breaks a rule (a missing required field, a conflict between
    /// fields, a feature Watchfire does not support yet).
    #[error("{}: {message}", At(path, *position))]
    Invalid {
        path: PathBuf,
        position: Option<Position>,
        message: String,
    },
    /// Several errors in one file, each on its own line.
    #[error("{}", list(.0))]
    Many(Vec<Error>),
}

fn list(errors: &[Error]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl Error {
    /// A validation error with no location yet; add one with [`Error::at`] and the file with
    /// [`Error::in_file`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            path: PathBuf::new(),
            position: None,
            message: message.into(),
        }
    }

    /// Sets the position from a YAML location, unless one is already set.
    pub fn at(mut self, location: &Location) -> Self {
        match &mut self {
            Error::Parse { position, .. } | Error::Invalid { position, .. } if position.is_none() => {
                *position = Position::from_location(location);
            }
            _ => {}
        }
        self
    }

    /// Sets the file, unless one is already set.
    pub fn in_file(mut self, file: &Path) -> Self {
        match &mut self {
            Error::Io { .. } => {}
            Error::Parse { path, .. } | Error::Invalid { path, .. } => {
                if path.as_os_str().is_empty() {
                    *path = file.to_path_buf();
                }
            }
            Error::Many(errors) => {
                *errors = std::mem::take(errors).into_iter().map(|e| e.in_file(file)).collect();
            }
        }
        self
    }

    /// Prefixes the message with context such as `scrape_configs[2] (job "node")`.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        self.context_str(&ctx.to_string())
    }

    fn context_str(mut self, ctx: &str) -> Self {
        match &mut self {
            Error::Parse { message, .. } | Error::Invalid { message, .. } => {
                *message = format!("{ctx}: {message}");
            }
            Error::Many(errors) => {
                *errors = std::mem::take(errors).into_iter().map(|e| e.context_str(ctx)).collect();
            }
            Error::Io { .. } => {}
        }
        self
    }

    /// The position of the (first) error, if known.
    pub fn position(&self) -> Option<Position> {
        match self {
            Error::Parse { position, .. } | Error::Invalid { position, .. } => *position,
            Error::Many(errors) => errors.first().and_then(Error::position),
            Error::Io { .. } => None,
        }
    }

    /// Turns a list of errors into one error: `Ok` when empty, the error itself when single.
    pub fn from_list(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }
}

/// Shorthand for a validation failure.
pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(Error::invalid(message))
}
