//! All integration tests in one binary (one file to carry to a GPU machine).
mod cli;
mod common;
mod dit;
mod ops;
mod sample_cli;
mod sampling;
mod weights;

use std::path::PathBuf;

/// tests/fixtures/<name>.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Names of the DiT fixtures (`<name>.safetensors` + `<name>.fixture.safetensors`).
pub fn dit_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".fixture.safetensors").map(str::to_string))
        .filter(|n| n.starts_with("dit_"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no DiT fixtures in tests/fixtures");
    names
}
