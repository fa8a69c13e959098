//! Any bytes as a safetensors file (header length, JSON header, offsets, dtypes, shapes): the
//! reader either refuses the file with a one-line error or every tensor it lists reads back
//! with exactly its declared shape and byte count, or fails with a one-line error.
#![no_main]

mod common;

use common::assert_one_line;
use ditrt::io::safetensors::{SafetensorsFile, CONFIG_KEY};
use ditrt::models::weight_source::{FileWeights, WeightSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = match SafetensorsFile::from_bytes("fuzz.safetensors", data.to_vec()) {
        Ok(file) => file,
        Err(e) => return assert_one_line(&e),
    };
    let _ = file.metadata(CONFIG_KEY);
    let keys = file.keys();
    let mut weights = FileWeights::new(&file);
    for key in &keys {
        let (_, shape) = file.info(key).expect("a listed key has info");
        match file.tensor(key) {
            Ok(t) => {
                assert_eq!(t.shape.dims(), &shape[..], "{key}: shape");
                assert_eq!(t.bytes.len(), t.numel() * t.dtype.size(), "{key}: byte count");
            }
            Err(e) => assert_one_line(&e),
        }
        // The binding's own checks: floating dtype, exact shape (asked for as stored, and not).
        if let Err(e) = weights.fetch(key, &shape) {
            assert_one_line(&e);
        }
        let mut other = shape.clone();
        other.push(1);
        assert_one_line(&weights.fetch(key, &other).expect_err("a shape with one more axis differs"));
    }
    if let Err(e) = weights.finish(&[]) {
        assert_one_line(&e);
    }
    if !keys.iter().any(|k| k == "fuzz.missing.key") {
        assert_one_line(&file.tensor("fuzz.missing.key").map(|_| ()).expect_err("no such key"));
    }
});
