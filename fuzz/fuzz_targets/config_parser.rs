//! Any text as a model config (`ditrt.config`), optionally followed by a NUL and a sampling
//! recipe (`ditrt.sampling`): bad JSON, unknown fields, absurd dimensions. Parsing and
//! validation either fail with a one-line error or give a config whose derived sizes
//! (parameter count, multiply-adds, geometry, description) compute without a panic and which
//! survives a JSON round trip; reading the same JSON from a file's metadata agrees.
#![no_main]

mod common;

use std::path::Path;

use common::{assert_one_line, safetensors_bytes};
use ditrt::models::ModelConfig;
use ditrt::sampling::recipe::{Recipe, SAMPLING_KEY};
use ditrt::io::safetensors::{SafetensorsFile, CONFIG_KEY};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ORIGIN: &str = "fuzz.safetensors";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (config_json, sampling) = match text.split_once('\0') {
        Some((c, s)) => (c, Some(s)),
        None => (text, None),
    };

    let parsed = ModelConfig::from_json(config_json, Path::new(ORIGIN));
    match &parsed {
        Err(e) => assert_one_line(e),
        Ok(config) => {
            let _ = config.describe();
            let _ = config.param_count();
            let _ = config.macs_per_image();
            // A text encoder takes token ids: no image geometry (an error, one line).
            match config.input_geometry() {
                Ok(g) => assert!(g.channels > 0 && g.height > 0 && g.width > 0, "{g:?}"),
                Err(e) => assert_one_line(&e),
            }
            assert!(config.output_channels() > 0);
            let _ = (config.num_classes(), config.null_class(), config.arch());
            let again = ModelConfig::from_json(&config.to_json(), Path::new(ORIGIN)).expect("a valid config round-trips");
            let (a, b) = (serde_json::to_value(config).unwrap(), serde_json::to_value(&again).unwrap());
            assert!(same(&a, &b), "JSON round trip: {a} vs {b}");
        }
    }

    // The same JSON as a file's metadata: the same outcome, then the file's recipe.
    let mut metadata = vec![(CONFIG_KEY, config_json)];
    if let Some(s) = sampling {
        metadata.push((SAMPLING_KEY, s));
    }
    let file = SafetensorsFile::from_bytes(ORIGIN, safetensors_bytes(&metadata, &[])).expect("a well-formed file with no tensors");
    let from_file = ModelConfig::from_file(&file);
    match (&parsed, &from_file) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("from_json and from_file disagree: {parsed:?} vs {from_file:?}"),
    }
    let Ok(config) = from_file else { return };
    let backbone = match config.sampling() {
        Ok(b) => b,
        Err(e) => return assert_one_line(&e),
    };
    match Recipe::of_file(&file, &backbone) {
        Ok(recipe) => {
            if let Err(e) = recipe.sampler_config(&backbone, false) {
                assert_one_line(&e);
            }
        }
        Err(e) => assert_one_line(&e),
    }
});

/// The same config, floats within a few ulps: serde_json's default float parser (without its
/// `float_roundtrip` feature) may read a long decimal an ulp off, so a round trip may move it
/// (crash-a415a458: mlp_ratio 2.184467440737095516150).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}
