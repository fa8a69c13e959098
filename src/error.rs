//! One error type for the library: every variant renders as a single line that names the cause
//! (file, tensor key, expected vs found).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{path}: tensor '{key}': {msg}")]
    Tensor { path: PathBuf, key: String, msg: String },
    #[error("{path}: config: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("unknown architecture '{arch}' (known: {known})")]
    UnknownArch { arch: String, known: String },
    #[error("backend {backend}: {msg}")]
    Backend { backend: String, msg: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// Text from a file (a tensor key, a parser's message quoting it) fit for a one-line error:
/// control characters such as newlines are escaped.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}
