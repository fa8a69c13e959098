//! The `ditrt` binary: exit codes and the lines scripts read.
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};

use ditrt::io::safetensors::CONFIG_KEY;
use ditrt::models::dit::DitConfig;
use ditrt::models::ModelConfig;

use crate::{ditrt, fixture};

#[test]
fn verify_prints_rel_l2_last_and_exits_by_tolerance() {
    let w = fixture("dit_p2.safetensors");
    let f = fixture("dit_p2.fixture.safetensors");
    let (code, stdout, stderr) = ditrt(&["verify", "--weights", w.to_str().unwrap(), "--fixture", f.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("rel_l2=") && last.contains(" max_abs="), "{last}");
    // A tolerance no real computation meets fails with exit code 1.
    let (code, stdout, _) = ditrt(&["verify", "--weights", w.to_str().unwrap(), "--fixture", f.to_str().unwrap(), "--tol", "1e-30"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.lines().last().unwrap().starts_with("rel_l2="));
}

#[test]
fn errors_are_one_line_with_exit_code_2() {
    let (code, stdout, stderr) = ditrt(&["verify", "--weights", "/nonexistent/w.safetensors", "--fixture", "x"]);
    assert_eq!(code, 2, "{stdout}");
    // Beside auto's note of the backends it passed over (no GPU here).
    assert_eq!(stderr.lines().filter(|l| !l.starts_with("note: auto runs on")).count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/w.safetensors"), "{stderr}");
    let (code, _, stderr) = ditrt(&["bench", "--arch", "unet"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown architecture 'unet'"), "{stderr}");
}

/// An official-layout DiT-XL/2 file: real header, zero data (a sparse file, so the test writes
/// a few hundred KiB, not 2.7 GB). `inspect` reads only the header.
#[test]
fn inspect_reports_dit_xl2_parameters_and_macs() {
    let cfg = ModelConfig::Dit(DitConfig::preset("DiT-XL/2").unwrap());
    let mut header: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    header.insert("__metadata__".into(), serde_json::json!({ CONFIG_KEY: cfg.to_json() }));
    let mut offset = 0usize;
    for (key, shape) in cfg.param_shapes() {
        let end = offset + 4 * shape.iter().product::<usize>();
        header.insert(key, serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}));
        offset = end;
    }
    let json = serde_json::to_string(&header).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DiT-XL-2-256.safetensors");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
    file.write_all(json.as_bytes()).unwrap();
    file.seek(SeekFrom::Current(offset as i64 - 1)).unwrap();
    file.write_all(&[0]).unwrap();
    drop(file);

    let (code, stdout, stderr) = ditrt(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("parameters: 675129632 (675.1M)"), "{stdout}");
    assert!(stdout.contains("multiply-adds per forward: 118.6G per image"), "{stdout}");
    let row = ["blocks.27.adaLN_modulation.1.weight", "F32", "[6912,", "1152]"];
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(row)), "{stdout}");
    assert!(stdout.contains("check: all 292 tensors match the dit config"), "{stdout}");
}

#[test]
fn bench_json_is_machine_readable() {
    let (code, stdout, stderr) =
        ditrt(&["bench", "--preset", "DiT-S/8", "--batch", "1", "--iters", "1", "--warmup", "0", "--json", "--backend", "cpu"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["batch"], 1);
    assert!(v["ms_per_forward"].as_f64().unwrap() > 0.0);
    assert!(v["gflop_per_s"].as_f64().unwrap() > 0.0);
}
