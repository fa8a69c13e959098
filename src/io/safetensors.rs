//! Safetensors reading (memory-mapped) and writing.
//! Every failure names the file, and the tensor key where there is one.
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype as StDtype, Metadata};
use safetensors::SafeTensors;

use crate::error::{one_line, Error, Result};
use crate::io::json_keys::check_unique_keys;
use crate::tensor::{f32_to_bytes, DType, HostTensor, Shape};

/// Metadata key under which the model config (JSON) travels.
pub const CONFIG_KEY: &str = "ditrt.config";

/// The bytes of a safetensors file: memory-mapped, built into the binary, or in memory.
enum Bytes {
    Mapped(memmap2::Mmap),
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Static(b) => b,
            Bytes::Owned(b) => b,
        }
    }
}

/// An open safetensors file: header parsed and validated, data memory-mapped.
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Bytes,
    data_start: usize,
    meta: Metadata,
}

impl SafetensorsFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file_err = |msg: String| Error::File { path: path.clone(), msg };
        // Opening a FIFO would block and a directory cannot be mapped: say what it is instead.
        let kind = std::fs::metadata(&path).map_err(|e| file_err(format!("cannot open: {e}")))?.file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() { "a directory" } else { "not a regular file (a pipe, socket or device)" };
            return Err(file_err(format!("is {what}; expected a safetensors file")));
        }
        let file = File::open(&path).map_err(|e| file_err(format!("cannot open: {e}")))?;
        let len = file.metadata().map_err(|e| file_err(format!("cannot stat: {e}")))?.len();
        if len < 8 {
            return Err(file_err(format!("not a safetensors file: {len} bytes, shorter than the 8-byte header length")));
        }
        // SAFETY: the map is read-only; ditrt never writes a file it has mapped.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| file_err(format!("cannot map: {e}")))?;
        Self::parse(path, Bytes::Mapped(mmap))
    }

    /// A file built into the binary; `name` stands for its path in messages.
    pub fn from_static(name: &str, bytes: &'static [u8]) -> Result<Self> {
        Self::parse(PathBuf::from(name), Bytes::Static(bytes))
    }

    /// A file held in memory (fuzzing, tests); `name` stands for its path in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::parse(PathBuf::from(name), Bytes::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self> {
        let (header_len, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::File {
            path: path.clone(),
            msg: format!("not a valid safetensors file ({}); truncated or corrupted?", one_line(&e.to_string())),
        })?;
        // The parser above keeps the last of two equal keys (tensors or metadata): refuse them.
        let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap_or("");
        check_unique_keys(header).map_err(|e| Error::File { path: path.clone(), msg: format!("header: {}", one_line(&e)) })?;
        Ok(SafetensorsFile { path, bytes, data_start: 8 + header_len, meta })
    }

    /// What the file holds, for telling two files (or one file before and after it changed in
    /// place) apart: its length and the CRC-32 of every byte, header and data. At several GB/s
    /// this costs about a second for a multi-GB checkpoint, once per run.
    pub fn content_id(&self) -> String {
        format!("{} bytes, crc32 {:08x}", self.bytes.len(), crc32fast::hash(&self.bytes))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor keys in sorted order.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.meta.tensors().into_keys().collect();
        keys.sort();
        keys
    }

    /// (dtype name as stored, shape) of `key`.
    pub fn info(&self, key: &str) -> Option<(String, Vec<usize>)> {
        self.meta.info(key).map(|i| (format!("{:?}", i.dtype), i.shape.clone()))
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.meta.metadata().as_ref().and_then(|m| m.get(key)).map(String::as_str)
    }

    /// An error about tensor `key` of this file, the key escaped to one line.
    pub fn tensor_err(&self, key: &str, msg: String) -> Error {
        Error::Tensor { path: self.path.clone(), key: one_line(key), msg }
    }

    /// Tensor `key` on the host: floats keep f32/f16/bf16 (f64 becomes f32); integers become
    /// u32 (labels), refusing negative or too-large values.
    pub fn tensor(&self, key: &str) -> Result<HostTensor> {
        let info = self.meta.info(key).ok_or_else(|| self.tensor_err(key, "missing".into()))?;
        let (start, end) = info.data_offsets;
        let data = &self.bytes[self.data_start + start..self.data_start + end];
        let shape = Shape(info.shape.clone());
        let kept = |dtype| HostTensor { shape: shape.clone(), dtype, bytes: data.to_vec() };
        let tensor = match info.dtype {
            StDtype::F32 => kept(DType::F32),
            StDtype::F16 => kept(DType::F16),
            StDtype::BF16 => kept(DType::BF16),
            StDtype::F64 => {
                let v: Vec<f32> = data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect();
                HostTensor { shape, dtype: DType::F32, bytes: f32_to_bytes(&v, DType::F32) }
            }
            StDtype::I64 | StDtype::I32 | StDtype::U32 | StDtype::U8 => {
                let width = info.dtype.bitsize() / 8;
                let mut ids = Vec::with_capacity(data.len() / width);
                for c in data.chunks_exact(width) {
                    let v: i128 = match info.dtype {
                        StDtype::I64 => i64::from_le_bytes(c.try_into().unwrap()) as i128,
                        StDtype::I32 => i32::from_le_bytes(c.try_into().unwrap()) as i128,
                        StDtype::U32 => u32::from_le_bytes(c.try_into().unwrap()) as i128,
                        _ => c[0] as i128,
                    };
                    let id = u32::try_from(v).map_err(|_| self.tensor_err(key, format!("integer value {v} is outside 0..2^32")))?;
                    ids.push(id);
                }
                HostTensor::from_u32(shape, &ids)
            }
            other => return Err(self.tensor_err(key, format!("unsupported dtype {other:?} (expected F32, F16, BF16, F64 or an integer type)"))),
        };
        Ok(tensor)
    }
}

fn st_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::U32 => "U32",
    }
}

/// Write tensors (in the given order) and string metadata as a safetensors file. The file is
/// written beside `path` under a temporary name and renamed when complete.
pub fn write_safetensors(path: &Path, tensors: &[(&str, &HostTensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut header: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).expect("string map"));
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let end = offset + t.bytes.len();
        header.insert(name.to_string(), serde_json::json!({"dtype": st_dtype_name(t.dtype), "shape": t.shape.dims(), "data_offsets": [offset, end]}));
        offset = end;
    }
    let mut json = serde_json::to_string(&header).expect("json header");
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + json.len() + offset);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(json.as_bytes());
    for (_, t) in tensors {
        bytes.extend_from_slice(&t.bytes);
    }
    super::atomic::write_atomically(path, &bytes)
}

/// The tensors of a fixture (x, t, y, out) or any small file, by key.
pub fn read_all(path: impl AsRef<Path>) -> Result<HashMap<String, HostTensor>> {
    let file = SafetensorsFile::open(path)?;
    file.keys().into_iter().map(|k| file.tensor(&k).map(|t| (k, t))).collect()
}
