//! Inputs the fuzzers (fuzz/, scripts/fuzz.sh) crashed the library with, and their kin: each
//! must now fail with a clean one-line error.
use std::path::Path;

use ditrt::io::safetensors::{SafetensorsFile, CONFIG_KEY};
use ditrt::models::weight_source::FileWeights;
use ditrt::models::ModelConfig;
use ditrt::sampling::recipe::{Recipe, SAMPLING_KEY};
use serde_json::{json, Value};

const ORIGIN: &str = "fuzz.safetensors";

/// A safetensors file of string metadata and tensors (key, dtype, shape, data), in memory.
fn file_bytes(metadata: &[(&str, &str)], tensors: &[(&str, &str, &[usize], &[u8])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), metadata.iter().map(|(k, v)| (k.to_string(), json!(v))).collect());
    let mut offset = 0;
    for (key, dtype, shape, data) in tensors {
        header.insert(key.to_string(), json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()]}));
        offset += data.len();
    }
    let text = Value::Object(header).to_string();
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    tensors.iter().for_each(|t| bytes.extend_from_slice(t.3));
    bytes
}

/// The error of `result`, checked to be one line that mentions each of `parts`.
fn one_line_error<T>(result: ditrt::Result<T>, parts: &[&str]) -> String {
    let msg = match result {
        Ok(_) => panic!("expected an error mentioning {parts:?}"),
        Err(e) => e.to_string(),
    };
    assert!(!msg.contains(['\n', '\r']), "error is not one line: {msg:?}");
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} does not mention {p:?}");
    }
    msg
}

fn from_json(config: &str) -> ditrt::Result<ModelConfig> {
    ModelConfig::from_json(config, Path::new(ORIGIN))
}

/// config_parser, crash-c2498e23: an unknown field whose name holds a newline was quoted raw
/// in serde's message, a two-line error.
#[test]
fn config_field_name_with_newline_gives_one_line_error() {
    let config = r#"{"arch": "diffit", "input_size": 8, "patch_size": 2, "\n_channels": 4, "hidden[size": 48, "depth": 2, "num_heads": 3, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}"#;
    one_line_error(from_json(config), &[ORIGIN, "config: diffit: unknown field", "\\n_channels"]);
    one_line_error(from_json(r#"{"arch": "di\nt"}"#), &["unknown architecture", "di\\nt"]);
}

/// config_parser: a sampling recipe whose sampler name holds a newline was quoted raw in
/// serde's message, a two-line error.
#[test]
fn sampler_name_with_newline_gives_one_line_error() {
    let config = r#"{"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 1, "num_heads": 4, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}"#;
    let sampling = r#"{"sampler": "dd\npm", "steps": 10, "cfg_scale": 1.0}"#;
    let file = SafetensorsFile::from_bytes(ORIGIN, file_bytes(&[(CONFIG_KEY, config), (SAMPLING_KEY, sampling)], &[])).unwrap();
    let config = ModelConfig::from_file(&file).unwrap();
    one_line_error(Recipe::of_file(&file, &config.sampling().unwrap()), &[ORIGIN, "ditrt.sampling: unknown variant", "dd\\npm"]);
}

/// config_parser, oom-27f4a450: depth 42949672962 listed every block's parameters (tens of
/// GB of keys) before the parameter count was checked.
#[test]
fn absurd_depth_is_refused_before_listing_parameters() {
    let config = r#"{"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 42949672962, "num_heads": 4, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}"#;
    one_line_error(from_json(config), &[ORIGIN, "dit: depth 42949672962 is too large (at most 1024)"]);
}

/// weights_binding, crash-1587249d: a model file whose config has in_channels near 2^64
/// overflowed 2 x in_channels (learned sigma) while its parameters were listed.
#[test]
fn absurd_channels_in_a_model_file_give_a_config_error() {
    let config = json!({"arch": "dit", "input_size": 2, "patch_size": 1, "in_channels": u64::MAX, "hidden_size": 2, "depth": 1,
        "num_heads": 1, "mlp_ratio": 1.0, "num_classes": 1, "learn_sigma": true})
    .to_string();
    let file = SafetensorsFile::from_bytes(ORIGIN, file_bytes(&[(CONFIG_KEY, &config)], &[])).unwrap();
    one_line_error(ModelConfig::from_file(&file), &[ORIGIN, "config: dit: in_channels 18446744073709551615 is too large"]);
}

/// Every size field of every architecture at the edges of the integer types: refused by
/// validation, never an overflow (fuzz builds check arithmetic) or a huge allocation.
#[test]
fn absurd_sizes_of_every_arch_give_one_line_errors() {
    let configs = [
        json!({"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}),
        json!({"arch": "tldm", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}),
        json!({"arch": "diffit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 48, "depth": 2, "num_heads": 3, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": true}),
        json!({"arch": "uvit", "img_size": 8, "patch_size": 2, "in_chans": 4, "embed_dim": 32, "depth": 4, "num_heads": 2, "mlp_ratio": 4.0, "mlp_time_embed": true, "num_classes": 10, "null_class": true, "conv": true}),
        json!({"arch": "diffit_unet", "image_size": 16, "in_channels": 3, "channels": [16, 16, 32], "blocks_per_level": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0, "time_dim": 32, "groups": 2, "num_classes": 10, "learn_sigma": true}),
        json!({"arch": "vae", "latent_channels": 4, "out_channels": 3, "block_out_channels": [16, 24, 24], "layers_per_block": 2, "norm_num_groups": 8, "latent_size": 4}),
    ];
    let absurd = [u64::MAX, 1 << 63, (1 << 62) + 2, 1 << 32, 1 << 25];
    for base in configs {
        from_json(&base.to_string()).unwrap_or_else(|e| panic!("base config: {e}"));
        for (field, value) in base.as_object().unwrap() {
            for &n in &absurd {
                let mut config = base.clone();
                match value {
                    // A window wider than the image is the image: global attention.
                    Value::Number(_) if field == "window_size" => continue,
                    Value::Number(_) => config[field] = json!(n),
                    Value::Array(levels) => config[field][levels.len() - 1] = json!(n),
                    _ => continue,
                }
                // Every error names the field or the size it makes too large.
                let msg = one_line_error(from_json(&config.to_string()), &[ORIGIN]);
                assert!(msg.contains(field.as_str()) || msg.contains("too large"), "{field} = {n}: {msg}");
            }
        }
    }
}

/// A tensor key holding a newline (or another control character) is escaped in errors.
#[test]
fn tensor_key_with_newline_gives_one_line_error() {
    let bytes = file_bytes(&[], &[("a\nb", "F32", &[1], &[0, 0, 128, 63]), ("c\u{7}", "BOOL", &[1], &[1])]);
    let file = SafetensorsFile::from_bytes(ORIGIN, bytes).unwrap();
    one_line_error(file.tensor("c\u{7}"), &["tensor 'c\\u{7}'", "unsupported dtype BOOL"]);
    one_line_error(ditrt::models::weight_source::WeightSource::finish(&FileWeights::new(&file), &[]), &["tensor 'a\\nb'", "unexpected key"]);
    // The reader's own message names the tensor whose data does not start where it should.
    let header = r#"{"x\ny":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut bad_offset = (header.len() as u64).to_le_bytes().to_vec();
    bad_offset.extend_from_slice(header.as_bytes());
    bad_offset.extend_from_slice(&[0; 8]);
    one_line_error(SafetensorsFile::from_bytes(ORIGIN, bad_offset), &[ORIGIN, "invalid offset for tensor `x\\ny`"]);
}

/// config_parser, crash-a415a458 (the target's round-trip check, no library panic): serde_json
/// reads a 22-digit mlp_ratio to within an ulp, not exactly; the config is valid and its JSON
/// reads back to the same sizes.
#[test]
fn long_float_in_config_reads_back_within_an_ulp() {
    let config = r#"{"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 2.184467440737095516150, "num_classes": 10, "learn_sigma": true}"#;
    let ratio = |c: &ModelConfig| match c {
        ModelConfig::Dit(d) => d.mlp_ratio,
        other => panic!("{other:?}"),
    };
    let first = from_json(config).unwrap();
    let again = from_json(&first.to_json()).unwrap();
    // The fuzzer's literal, digit for digit (more than an f64 holds, which is the point).
    #[allow(clippy::excessive_precision)]
    let written = 2.184467440737095516150;
    for r in [ratio(&first), ratio(&again)] {
        assert!((r - written).abs() <= 4.0 * f64::EPSILON * r, "{r}");
    }
    assert_eq!(first.param_shapes(), again.param_shapes());
}
