//! Shared by the fuzz targets: the library's error contract and a safetensors writer in memory.
#![allow(dead_code)]

use serde_json::{json, Map, Value};

/// Every failure is an error of one line that says something (README: "Errors are one line").
pub fn assert_one_line(e: &ditrt::Error) {
    let msg = e.to_string();
    assert!(!msg.trim().is_empty(), "empty error message: {e:?}");
    assert!(!msg.contains(['\n', '\r']), "error is not one line: {msg:?}");
}

/// One tensor of a file being written: key, dtype name as safetensors spells it, shape, data.
pub struct Entry {
    pub key: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Bytes per element of the safetensors dtypes the targets write.
pub fn dtype_size(dtype: &str) -> usize {
    match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        _ => 1, // U8, I8, BOOL, F8_E4M3, F8_E5M2
    }
}

/// A safetensors file: 8-byte header length, JSON header (string metadata, then each tensor
/// with consecutive data offsets, whatever its data length), space padding, data.
pub fn safetensors_bytes(metadata: &[(&str, &str)], tensors: &[Entry]) -> Vec<u8> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        let meta: Map<String, Value> = metadata.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        header.insert("__metadata__".into(), Value::Object(meta));
    }
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.data.len();
        header.insert(t.key.clone(), json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, end]}));
        offset = end;
    }
    let mut text = Value::Object(header).to_string();
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    for t in tensors {
        bytes.extend_from_slice(&t.data);
    }
    bytes
}
