//! Bad input: each failure is an error naming the file, the key and expected vs found.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::io::safetensors::{read_all, write_safetensors, SafetensorsFile, CONFIG_KEY};
use ditrt::tensor::{DType, HostTensor};
use ditrt::tools::verify::verify_fixture;

use crate::fixture;

const MODEL: &str = "dit_p2";

fn model_path() -> PathBuf {
    fixture(&format!("{MODEL}.safetensors"))
}

/// The model file's tensors, in key order, and its config JSON.
fn model_parts() -> (Vec<(String, HostTensor)>, String) {
    let file = SafetensorsFile::open(model_path()).unwrap();
    let config = file.metadata(CONFIG_KEY).unwrap().to_string();
    let tensors = file.keys().into_iter().map(|k| (k.clone(), file.tensor(&k).unwrap())).collect();
    (tensors, config)
}

fn write(path: &Path, tensors: &[(String, HostTensor)], config: Option<&str>) {
    let refs: Vec<(&str, &HostTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut meta = BTreeMap::new();
    if let Some(c) = config {
        meta.insert(CONFIG_KEY.to_string(), c.to_string());
    }
    write_safetensors(path, &refs, &meta).unwrap();
}

/// The error of running the fixture on the model file at `path`.
fn verify_error(path: &Path) -> String {
    let fixture = fixture(&format!("{MODEL}.fixture.safetensors"));
    match verify_fixture(Arc::new(CpuBackend::new()), path, &fixture, DType::F32) {
        Ok(c) => panic!("expected an error for {}, got rel_l2 {}", path.display(), c.rel_l2),
        Err(e) => e.to_string(),
    }
}

/// `msg` is one line naming each of `parts`.
pub fn assert_names(msg: &str, parts: &[&str]) {
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
    for p in parts {
        assert!(msg.contains(p), "error '{msg}' does not mention '{p}'");
    }
}

#[test]
fn rewritten_model_still_verifies() {
    // The writer and reader agree: a round trip through write_safetensors is the same model.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.safetensors");
    let (tensors, config) = model_parts();
    write(&path, &tensors, Some(&config));
    let fixture = fixture(&format!("{MODEL}.fixture.safetensors"));
    let cmp = verify_fixture(Arc::new(CpuBackend::new()), &path, &fixture, DType::F32).unwrap();
    assert!(cmp.passes(1e-5), "{cmp:?}");
}

#[test]
fn truncated_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(model_path()).unwrap();
    for keep in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("trunc{keep}.safetensors"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        assert_names(&verify_error(&path), &[&path.display().to_string()]);
    }
}

#[test]
fn corrupted_header_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(model_path()).unwrap();
    let path = dir.path().join("corrupt.safetensors");
    // Garbage inside the JSON header.
    bytes[12..20].copy_from_slice(b"\xff\xfe{{]]\"x");
    std::fs::write(&path, &bytes).unwrap();
    assert_names(&verify_error(&path), &["corrupt.safetensors", "not a valid safetensors file"]);
    // A header length pointing past the end of the file.
    let mut bytes = std::fs::read(model_path()).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_names(&verify_error(&path), &["corrupt.safetensors"]);
}

#[test]
fn missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.safetensors");
    let (mut tensors, config) = model_parts();
    tensors.retain(|(k, _)| k != "blocks.1.mlp.fc2.weight");
    write(&path, &tensors, Some(&config));
    assert_names(&verify_error(&path), &["missing.safetensors", "blocks.1.mlp.fc2.weight", "missing"]);
}

#[test]
fn unexpected_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.safetensors");
    let (mut tensors, config) = model_parts();
    tensors.push(("blocks.9.attn.qkv.weight".into(), HostTensor::from_f32([2], &[1.0, 2.0])));
    write(&path, &tensors, Some(&config));
    assert_names(&verify_error(&path), &["extra.safetensors", "blocks.9.attn.qkv.weight", "unexpected key"]);
}

#[test]
fn wrong_shape_is_named_with_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.safetensors");
    let (mut tensors, config) = model_parts();
    let entry = tensors.iter_mut().find(|(k, _)| k == "blocks.0.attn.proj.weight").unwrap();
    let n = entry.1.numel();
    entry.1 = HostTensor::from_f32([n / 2, 2], &entry.1.to_f32());
    write(&path, &tensors, Some(&config));
    let d = (n as f64).sqrt() as usize;
    assert_names(&verify_error(&path), &["blocks.0.attn.proj.weight", &format!("expected shape [{d}, {d}]"), &format!("found [{}, 2]", n / 2)]);
}

#[test]
fn wrong_dtype_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dtype.safetensors");
    let (mut tensors, config) = model_parts();
    let entry = tensors.iter_mut().find(|(k, _)| k == "final_layer.linear.bias").unwrap();
    let n = entry.1.numel();
    entry.1 = HostTensor::from_u32(entry.1.shape.clone(), &vec![1; n]);
    write(&path, &tensors, Some(&config));
    assert_names(&verify_error(&path), &["final_layer.linear.bias", "expected a floating dtype", "U32"]);
}

#[test]
fn unknown_architecture_and_bad_config_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (tensors, config) = model_parts();
    let path = dir.path().join("arch.safetensors");
    write(&path, &tensors, Some(&config.replace("\"dit\"", "\"resnet\"")));
    assert_names(&verify_error(&path), &["unknown architecture 'resnet'"]);

    let path = dir.path().join("noconfig.safetensors");
    write(&path, &tensors, None);
    assert_names(&verify_error(&path), &["noconfig.safetensors", "ditrt.config"]);

    let path = dir.path().join("badconfig.safetensors");
    write(&path, &tensors, Some(&config.replace("\"depth\"", "\"depht\"")));
    assert_names(&verify_error(&path), &["badconfig.safetensors", "config"]);

    let path = dir.path().join("heads.safetensors");
    let json: serde_json::Value = serde_json::from_str(&config).unwrap();
    let mut json = json.as_object().unwrap().clone();
    json.insert("num_heads".into(), serde_json::json!(7));
    write(&path, &tensors, Some(&serde_json::to_string(&json).unwrap()));
    assert_names(&verify_error(&path), &["heads.safetensors", "not a multiple of num_heads 7"]);
}

#[test]
fn missing_file_is_named() {
    let path = fixture("no_such_model.safetensors");
    assert_names(&verify_error(&path), &["no_such_model.safetensors", "cannot open"]);
}

#[test]
fn fixture_reader_keeps_labels_as_integers() {
    let fixture = read_all(fixture(&format!("{MODEL}.fixture.safetensors"))).unwrap();
    let y = &fixture["y"];
    assert_eq!(y.dtype, DType::U32);
    assert_eq!(fixture["x"].shape.dims()[0], y.numel());
}
