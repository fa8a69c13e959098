//! All integration tests in one binary (one file to carry to a GPU machine).
#[cfg(feature = "wgpu")]
mod adapter_choice;
mod cli;
mod clip_text;
mod common;
mod diffit;
mod digits;
mod dit;
#[cfg(feature = "wgpu")]
mod full_depth;
mod fuzz_regressions;
#[cfg(feature = "wgpu")]
mod grid_audit;
mod input_checks;
mod layers;
mod limits;
#[cfg(feature = "wgpu")]
mod lowered_limits;
mod ops;
mod outputs;
mod real_widths;
mod reliability;
mod sample_cli;
mod sampling;
mod tldm;
mod tokenizer;
mod uvit;
mod uvit_t2i;
mod vae;
mod weights;

use std::path::PathBuf;
use std::sync::Arc;

use ditrt::backend::Backend;
use ditrt::tensor::DType;
use ditrt::tools::verify::verify_fixture;

/// Runs the ditrt binary: (exit code, stdout, stderr).
pub fn ditrt(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ditrt")).args(args).output().expect("run ditrt");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// tests/fixtures/<name>.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Names of the model fixtures whose names start with `prefix` (`<name>.safetensors` +
/// `<name>.fixture.safetensors`), sorted.
pub fn model_fixtures(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".fixture.safetensors").map(str::to_string))
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no {prefix}* fixtures in tests/fixtures");
    names
}

/// Runs every `prefix` fixture in `dtype` on every backend that supports it
/// (`common::backends_for`) and asserts rel_l2 <= `tol` (and no NaN).
pub fn check_model_fixtures(prefix: &str, dtype: DType, tol: f64) {
    for backend in common::backends_for(dtype) {
        check_model_fixtures_on(prefix, backend, dtype, tol);
    }
}

fn check_model_fixtures_on(prefix: &str, backend: Arc<dyn Backend>, dtype: DType, tol: f64) {
    for name in model_fixtures(prefix) {
        let cmp = verify_fixture(backend.clone(), &fixture(&format!("{name}.safetensors")), &fixture(&format!("{name}.fixture.safetensors")), dtype)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name} {dtype} on {}: rel_l2={:.3e} max_abs={:.3e}", backend.name(), cmp.rel_l2, cmp.max_abs);
        assert!(cmp.passes(tol), "{name} {dtype}: rel_l2 {:.3e} > {tol:e} (non-finite: {})", cmp.rel_l2, cmp.non_finite);
    }
}
