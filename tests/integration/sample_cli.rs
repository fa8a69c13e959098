//! `ditrt sample`: outputs, determinism, shards and errors, through the binary.
use std::path::Path;
use std::process::Command;

use crate::fixture;

/// `ditrt sample` of the latent fixture DiT (4x8x8, random weights) decoded through the
/// fixture VAE (x8) to 64x64 images.
fn sample(args: &[&str], out: &Path) -> (i32, String, String) {
    let weights = fixture("dit_p2.safetensors");
    let vae = fixture("vae_f8.safetensors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ditrt"));
    // Later flags override earlier ones (args_override_self).
    cmd.args(["sample", "--weights", weights.to_str().unwrap(), "--vae", vae.to_str().unwrap()]);
    cmd.args(["--steps", "3", "--backend", "cpu", "--out", out.to_str().unwrap()]);
    let o = cmd.args(args).output().expect("run ditrt");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

/// arr_0 of an .npz written by ditrt: (shape, pixels).
fn read_npz(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let start = bytes.windows(6).position(|w| w == b"\x93NUMPY").expect("npy inside");
    let npy = &bytes[start..];
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    let dims = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = dims.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let n: usize = shape.iter().product();
    (shape, npy[10 + header_len..10 + header_len + n].to_vec())
}

#[test]
fn npz_is_deterministic_and_shards_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.npz");
    let (code, stdout, stderr) = sample(&["--num", "5", "--batch", "2", "--seed", "11"], &whole);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().last().unwrap(), format!("wrote {} (5 images, 64x64)", whole.display()));
    let (shape, pixels) = read_npz(&whole);
    assert_eq!(shape, [5, 64, 64, 3]);

    let again = dir.path().join("again.npz");
    assert_eq!(sample(&["--num", "5", "--batch", "3", "--seed", "11"], &again).0, 0);
    assert_eq!(read_npz(&again).1, pixels, "same seed, different pixels (batch 3 vs 2)");

    let mut shards = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("shard{i}.npz"));
        let (code, _, stderr) = sample(&["--num", "5", "--batch", "2", "--seed", "11", "--shard", &format!("{i}/3")], &out);
        assert_eq!(code, 0, "{stderr}");
        shards.extend(read_npz(&out).1);
    }
    assert_eq!(shards, pixels, "shards 0..3 of 3 concatenated differ from one run");
}

#[test]
fn png_grid_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let (code, _, stderr) = sample(&["--class", "2,7", "--num", "4"], &out);
    assert_eq!(code, 0, "{stderr}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    // 2 columns (one per class) of 64x64 decoded images, with labels above.
    assert!(info.width >= 2 * 64 && info.width < 3 * 64, "{}", info.width);
    assert!(info.height >= 2 * 64, "{}", info.height);
}

#[test]
fn bad_requests_fail_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    for (args, needle) in [
        (&["--class", "10"][..], "class id 10 out of range"),
        (&["--shard", "3/3"][..], "--shard '3/3'"),
        (&["--steps", "0"][..], "steps must be in 1..=1000"),
        (&["--dtype", "f8"][..], "unknown dtype 'f8'"),
        (&["--backend", "tpu"][..], "unknown backend 'tpu'"),
    ] {
        let (code, _, stderr) = sample(args, &out);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    }
    // A latent model needs a decoder.
    let o = Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["sample", "--weights", fixture("dit_p2.safetensors").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --vae"), "{}", String::from_utf8_lossy(&o.stderr));
    let jpg = dir.path().join("x.jpg");
    let (code, _, stderr) = sample(&[], &jpg);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected a .png or .npz"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a failed run left files behind");
}
