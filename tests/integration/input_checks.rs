//! Bad command-line values are refused up front in one line (exit 2), before any work: counts
//! of 0, tolerances that cannot be met or passed, an output that cannot be written, and shard
//! arithmetic near the top of usize, an unknown `WGPU_BACKEND`.
use ditrt::tools::verify::Comparison;

use crate::{ditrt, fixture};

/// Asserts exit 2 with `want` on stderr, and that no sampling started.
fn refused(args: &[&str], want: &str) {
    let (code, stdout, stderr) = ditrt(args);
    assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
    assert!(stderr.contains(want), "{args:?}: expected '{want}' in: {stderr}");
    assert!(!stderr.contains("sampling "), "{args:?} sampled before refusing: {stderr}");
}

#[test]
fn zero_counts_are_refused() {
    refused(&["sample", "--batch", "0"], "must be at least 1");
    refused(&["bench", "--iters", "0"], "must be at least 1");
    refused(&["bench", "--batch", "0"], "must be at least 1");
    refused(&["soak", "--steps", "0"], "must be at least 1");
    refused(&["soak", "--steps", "5", "--warmup", "5", "--backend", "cpu"], "leaves none of the 5 steps");
}

#[test]
fn verify_tolerance_must_be_finite_and_not_negative() {
    let (w, f) = (fixture("dit_p2.safetensors"), fixture("dit_p2.fixture.safetensors"));
    for tol in ["inf", "nan", "-1", "x"] {
        refused(&["verify", "--weights", w.to_str().unwrap(), "--fixture", f.to_str().unwrap(), "--tol", tol], "is not a tolerance");
    }
}

/// One NaN in the output makes the largest difference NaN (f64::max would drop it).
#[test]
fn a_nan_output_reports_max_abs_nan() {
    let cmp = Comparison::new(&[f32::NAN, 1.0, 2.0], &[0.0, 1.0, 1.0]);
    assert!(cmp.max_abs.is_nan() && cmp.non_finite && !cmp.passes(1.0), "{cmp:?}");
    let cmp = Comparison::new(&[1.0, f32::NAN], &[3.0, 0.0]);
    assert!(cmp.max_abs.is_nan(), "{cmp:?}");
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/x.png");
    refused(&["sample", "--backend", "cpu", "--out", missing.to_str().unwrap()], "cannot write here");
    let folder = dir.path().join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    refused(&["sample", "--backend", "cpu", "--out", folder.to_str().unwrap()], "is a directory");
    // Nothing was left behind by the check.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// `--num 4 --shard (2^63-1)/2^63` is the last shard: i * num overflowed usize before.
#[test]
fn shard_bounds_near_the_top_of_usize_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("last.npz");
    let (code, stdout, stderr) = ditrt(&[
        "sample",
        "--backend",
        "cpu",
        "--steps",
        "2",
        "--num",
        "4",
        "--shard",
        "9223372036854775807/9223372036854775808",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("(1 images"), "{stdout}");
}

/// `WGPU_BACKEND` names the graphics APIs to look on: a name wgpu would not know, or GL (which
/// ditrt does not use), is refused naming the variable (it used to print `Backends(0x0)`).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_backend_variable_is_checked() {
    for value in ["garbage", "gl", "vulkan,nope"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ditrt"))
            .args(["bench", "--backend", "wgpu", "--iters", "1", "--warmup", "0"])
            .env("WGPU_BACKEND", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains(&format!("WGPU_BACKEND='{value}'")) && stderr.contains("vulkan, metal, dx12"), "{value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// `bench --preset` alone finds the backbone; an unknown preset lists the known ones.
#[test]
fn bench_takes_its_arch_from_the_preset_and_lists_presets() {
    let (code, stdout, stderr) = ditrt(&["bench", "--preset", "U-ViT-S/2-CIFAR10", "--backend", "cpu", "--warmup", "0", "--iters", "1", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("U-ViT"), "{stdout}");
    refused(&["bench", "--preset", "DiT-Q/2"], "unknown preset 'DiT-Q/2' (known: DiT-{S,B,L,XL}/{2,4,8}[-512]; U-ViT-S/2-CIFAR10");
    refused(&["bench", "--arch", "vae", "--preset", "SD-VAE-KL-f4"], "unknown vae preset 'SD-VAE-KL-f4' (known: SD-VAE-KL-f8, SD-VAE-KL-f8-512)");
}
