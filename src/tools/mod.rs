//! What engineers run beside sampling: forward timing, fixture verification, soak runs,
//! weight checks and merging shards.
pub mod bench;
pub mod merge;
pub mod soak;
pub mod verify;
pub mod weight_check;
