//! What engineers run beside sampling: forward timing, fixture verification, soak runs and
//! weight checks.
pub mod bench;
pub mod soak;
pub mod verify;
pub mod weight_check;
