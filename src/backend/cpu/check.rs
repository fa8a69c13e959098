//! The CPU backend's errors: every misuse becomes a one-line `Error::Backend` naming the op
//! and the field (argument rules live in `backend::validate`, shared by every backend).
use crate::error::Error;

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "cpu".into(), msg: msg.into() }
}
