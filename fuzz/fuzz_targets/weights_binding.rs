//! The weights-to-model binding: a small model file of any architecture made from the input
//! (config sizes, now and then an absurd one), its tensors written from the config's own
//! parameter list and then damaged (a key dropped, renamed or added, a dimension or dtype
//! changed, the sampling recipe replaced, bytes flipped, the file cut short), then loaded as
//! `ditrt` loads a model: config and recipe from the metadata, the graph built against the
//! file's tensors and bound to the CPU backend. Every outcome is a bound model whose
//! parameters are exactly the file's tensors, or a one-line error.
#![no_main]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{assert_one_line, dtype_size, safetensors_bytes, Entry};
use ditrt::backend::cpu::CpuBackend;
use ditrt::graph::Session;
use ditrt::models::ModelConfig;
use ditrt::sampling::recipe::{Recipe, SAMPLING_KEY};
use ditrt::tensor::DType;
use ditrt::io::safetensors::{SafetensorsFile, CONFIG_KEY};
use ditrt::models::weight_source::FileWeights;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// Graphs whose buffers would take more than this are not bound (a config may legitimately
/// ask for a large image from few parameters; that costs memory, it is no bug).
const MAX_SESSION_BYTES: usize = 64 << 20;

/// Files are written with at most this many parameters and tensors.
const MAX_PARAMS: usize = 1 << 16;
const MAX_TENSORS: usize = 400;

const FLOAT_DTYPES: &[&str] = &["F32", "F16", "BF16", "F64"];
const OTHER_DTYPES: &[&str] = &["I64", "I32", "U32", "U8", "I8", "BOOL", "F8_E4M3", "U16"];

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((bytes, dtype, batch)) = model_file(&mut u) else { return };
    bind(bytes, dtype, batch);
});

fn small(u: &mut Unstructured, lo: usize, hi: usize) -> Result<usize> {
    u.int_in_range(lo..=hi)
}

fn mlp_ratio(u: &mut Unstructured) -> Result<f64> {
    Ok(*u.choose(&[1.0, 2.0, 0.5, 4.0, 0.25, 1.5])?)
}

/// A small config of any architecture, as JSON; most are valid.
fn tiny_config(u: &mut Unstructured) -> Result<Value> {
    let arch = small(u, 0, 6)?;
    let heads = small(u, 1, 2)?;
    let config = match arch {
        0..=2 => {
            let patch = small(u, 1, 2)?;
            let name = ["dit", "tldm", "diffit"][arch];
            json!({
                "arch": name,
                "input_size": patch * small(u, 1, 3)?,
                "patch_size": patch,
                "in_channels": small(u, 1, 3)?,
                "hidden_size": heads * small(u, 1, 4)?,
                "depth": small(u, 1, 2)?,
                "num_heads": heads,
                "mlp_ratio": mlp_ratio(u)?,
                "num_classes": small(u, 0, 3)?,
                "learn_sigma": u.arbitrary::<bool>()?,
            })
        }
        3 => {
            let patch = small(u, 1, 2)?;
            json!({
                "arch": "uvit",
                "img_size": patch * small(u, 1, 3)?,
                "patch_size": patch,
                "in_chans": small(u, 1, 3)?,
                "embed_dim": heads * small(u, 1, 4)?,
                "depth": small(u, 0, 3)?,
                "num_heads": heads,
                "mlp_ratio": mlp_ratio(u)?,
                "mlp_time_embed": u.arbitrary::<bool>()?,
                "num_classes": small(u, 0, 3)?,
                "null_class": u.arbitrary::<bool>()?,
                "conv": u.arbitrary::<bool>()?,
            })
        }
        4 => {
            let levels = small(u, 1, 3)?;
            let groups = small(u, 1, 2)?;
            let unit = if groups == heads { groups } else { 2 };
            let channels: Vec<usize> = (0..levels).map(|_| small(u, 1, 2).map(|m| m * unit)).collect::<Result<_>>()?;
            json!({
                "arch": "diffit_unet",
                "image_size": small(u, 1, 3)? << (levels - 1),
                "in_channels": small(u, 1, 3)?,
                "channels": channels,
                "blocks_per_level": small(u, 1, 2)?,
                "num_heads": heads,
                "window_size": small(u, 1, 4)?,
                "mlp_ratio": mlp_ratio(u)?,
                "time_dim": small(u, 1, 8)?,
                "groups": groups,
                "num_classes": small(u, 0, 2)?,
                "learn_sigma": u.arbitrary::<bool>()?,
            })
        }
        6 => json!({
            "arch": "clip_text",
            "vocab_size": small(u, 1, 8)?,
            "width": heads * small(u, 1, 4)?,
            "layers": small(u, 0, 2)?,
            "heads": heads,
            "intermediate": small(u, 1, 8)?,
            "max_positions": small(u, 1, 5)?,
            "act": *u.choose(&["quick_gelu", "gelu"])?,
            "eps": *u.choose(&[1e-5, 1e-6, 0.0])?,
        }),
        _ => {
            let levels = small(u, 1, 3)?;
            let groups = small(u, 1, 2)?;
            let channels: Vec<usize> = (0..levels).map(|_| small(u, 1, 3).map(|m| m * groups)).collect::<Result<_>>()?;
            json!({
                "arch": "vae",
                "latent_channels": small(u, 1, 3)?,
                "out_channels": small(u, 1, 3)?,
                "block_out_channels": channels,
                "layers_per_block": small(u, 0, 1)?,
                "norm_num_groups": groups,
                "latent_size": small(u, 1, 3)?,
            })
        }
    };
    Ok(config)
}

/// A size a header could claim: zero, huge, or at the edges of the integer types.
fn absurd(u: &mut Unstructured) -> Result<Value> {
    Ok(match small(u, 0, 5)? {
        0 => json!(0),
        1 => json!(u64::MAX),
        2 => json!(1u64 << 32),
        3 => json!((1u64 << 31) - 1),
        4 => json!(u.int_in_range(1u64..=1 << 20)?),
        _ => json!(u.arbitrary::<u64>()?),
    })
}

/// The bytes of a model file (with the dtype and batch to bind it in).
fn model_file(u: &mut Unstructured) -> Result<(Vec<u8>, DType, usize)> {
    let mut config = tiny_config(u)?;
    // Now and then one field (or one level's channels) takes an absurd value.
    if small(u, 0, 3)? == 0 {
        let obj = config.as_object_mut().expect("object");
        let fields: Vec<String> = obj.keys().filter(|k| *k != "arch").cloned().collect();
        let field = u.choose(&fields)?.clone();
        let value = absurd(u)?;
        match obj.get_mut(&field) {
            Some(Value::Array(levels)) if !levels.is_empty() => {
                let i = u.choose_index(levels.len())?;
                levels[i] = value;
            }
            Some(slot) => *slot = value,
            None => {}
        }
    }
    let config_json = config.to_string();

    // The tensors the config asks for, stored in one float dtype: none if it does not parse,
    // or if it is larger than a small file (its binding then fails at the first missing key).
    let shapes = match ModelConfig::from_json(&config_json, Path::new("fuzz")) {
        Ok(c) => Some(c.param_shapes()).filter(|s| s.len() <= MAX_TENSORS && c.param_count() <= MAX_PARAMS).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let stored = *u.choose(&FLOAT_DTYPES[..3])?;
    let mut tensors: Vec<Entry> = shapes
        .into_iter()
        .map(|(key, shape)| Entry { key, dtype: stored, shape, data: Vec::new() })
        .collect();
    let mut sampling: Option<String> = None;

    for _ in 0..small(u, 0, 3)? {
        let n = tensors.len();
        match small(u, 0, 6)? {
            0 if n > 0 => {
                tensors.remove(u.choose_index(n)?);
            }
            1 if n > 0 => {
                let t = &mut tensors[u.choose_index(n)?];
                let axis = small(u, 0, t.shape.len())?;
                let dim = small(u, 0, 5)?;
                if axis < t.shape.len() {
                    t.shape[axis] = dim;
                } else {
                    t.shape.push(dim);
                }
            }
            2 if n > 0 => {
                let i = u.choose_index(n)?;
                tensors[i].dtype = if u.arbitrary()? { u.choose(FLOAT_DTYPES)? } else { u.choose(OTHER_DTYPES)? };
            }
            3 if n > 0 => {
                let i = u.choose_index(n)?;
                tensors[i].key.push_str(if u.arbitrary()? { ".x" } else { "\n" });
            }
            4 => {
                let shape = vec![small(u, 0, 3)?, small(u, 1, 3)?];
                tensors.push(Entry { key: format!("extra.{n}"), dtype: stored, shape, data: Vec::new() });
            }
            5 => {
                let recipe = json!({
                    "sampler": *u.choose(&["ddpm", "ddim", "dpm-solver", "euler"])?,
                    "steps": *u.choose(&[0u64, 1, 50, 250, 1000, 1001, u64::MAX])?,
                    "cfg_scale": *u.choose(&[0.0, 1.0, 4.0, -1.0, 1e308])?,
                    "eta": *u.choose(&[0.0, 0.5, 1.0, 2.0])?,
                });
                sampling = Some(recipe.to_string());
            }
            _ => {}
        }
    }
    for t in &mut tensors {
        // Values: small floats of either sign; integers out of u32 range in the wide types.
        let len = t.shape.iter().product::<usize>() * dtype_size(t.dtype);
        t.data = [0x3c, 0x81, 0x00, 0x3f].repeat(len.div_ceil(4));
        t.data.truncate(len);
    }

    let mut metadata = vec![(CONFIG_KEY, config_json.as_str())];
    if let Some(s) = &sampling {
        metadata.push((SAMPLING_KEY, s.as_str()));
    }
    let mut bytes = safetensors_bytes(&metadata, &tensors);
    // Damage below the format: a flipped byte, a short file, a wrong header length.
    for _ in 0..small(u, 0, 2)? {
        match small(u, 0, 3)? {
            0 => {
                let i = u.choose_index(bytes.len())?;
                bytes[i] ^= u.int_in_range(1..=255)?;
            }
            1 => bytes.truncate(u.choose_index(bytes.len())?),
            2 if bytes.len() >= 8 => {
                let n: u64 = u.arbitrary()?;
                bytes[..8].copy_from_slice(&n.to_le_bytes());
            }
            _ => {}
        }
    }
    let dtype = *u.choose(&[DType::F32, DType::F16, DType::BF16])?;
    Ok((bytes, dtype, small(u, 1, 2)?))
}

/// Load a model file as `ditrt sample` / `verify` do, up to a bound session.
fn bind(bytes: Vec<u8>, dtype: DType, batch: usize) {
    let file = match SafetensorsFile::from_bytes("fuzz.safetensors", bytes) {
        Ok(f) => f,
        Err(e) => return assert_one_line(&e),
    };
    let config = match ModelConfig::from_file(&file) {
        Ok(c) => c,
        Err(e) => return assert_one_line(&e),
    };
    match config.sampling().and_then(|b| Recipe::of_file(&file, &b).and_then(|r| r.sampler_config(&b, false))) {
        Ok(_) => {}
        Err(e) => assert_one_line(&e),
    }
    let graph = match config.build(&mut FileWeights::new(&file), batch, dtype) {
        Ok(g) => g,
        Err(e) => return assert_one_line(&e),
    };
    // Bound: every parameter is one of the file's tensors with its exact shape, and every
    // tensor but the model's data keys is one of the parameters.
    let params = file.keys().into_iter().filter(|k| !config.data_keys().contains(&k.as_str()));
    let stored: usize = params.map(|k| file.info(&k).expect("listed").1.iter().product::<usize>()).sum();
    assert_eq!(config.param_count(), stored, "parameters bound vs stored");
    if graph.peak_bytes() > MAX_SESSION_BYTES {
        return;
    }
    if let Err(e) = Session::new(Arc::new(CpuBackend::new()), &graph) {
        assert_one_line(&e);
    }
}
