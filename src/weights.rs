//! Safetensors reading (memory-mapped) and writing, and the weight sources a model binds to.
//! Every failure names the file, and the tensor key where there is one.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use safetensors::tensor::{Dtype as StDtype, Metadata};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::tensor::{f32_to_bytes, DType, HostTensor, Shape};

/// Metadata key under which the model config (JSON) travels.
pub const CONFIG_KEY: &str = "ditrt.config";

/// Text from a file (a tensor key, a parser's message quoting it) fit for a one-line error:
/// control characters such as newlines are escaped.
pub(crate) fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

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
        Ok(SafetensorsFile { path, bytes, data_start: 8 + header_len, meta })
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

    fn tensor_err(&self, key: &str, msg: String) -> Error {
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

/// Where a model gets its parameters from, by official key and expected shape.
pub trait WeightSource {
    /// The floating tensor `key`, which must have exactly `shape`.
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<HostTensor>;
    /// Called after binding: a file with keys the model did not ask for is an error.
    fn finish(&self) -> Result<()>;
}

/// A safetensors file checked key by key against what the model asks for.
pub struct FileWeights<'a> {
    file: &'a SafetensorsFile,
    used: HashSet<String>,
}

impl<'a> FileWeights<'a> {
    pub fn new(file: &'a SafetensorsFile) -> Self {
        FileWeights { file, used: HashSet::new() }
    }
}

impl WeightSource for FileWeights<'_> {
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.file.tensor(key)?;
        if !t.dtype.is_float() {
            return Err(self.file.tensor_err(key, format!("expected a floating dtype (F32, F16, BF16), found {:?}", self.file.info(key).unwrap().0)));
        }
        if t.shape.dims() != shape {
            return Err(self.file.tensor_err(key, format!("expected shape {}, found {}", Shape(shape.to_vec()), t.shape)));
        }
        self.used.insert(key.to_string());
        Ok(t)
    }

    fn finish(&self) -> Result<()> {
        let extra: Vec<String> = self.file.keys().into_iter().filter(|k| !self.used.contains(k)).collect();
        match extra.first() {
            None => Ok(()),
            Some(first) => Err(self.file.tensor_err(
                first,
                format!("unexpected key: the model does not use it ({} unused key(s) in all)", extra.len()),
            )),
        }
    }
}

/// Normally distributed values for any key (benchmarks with random weights).
pub struct RandomWeights {
    rng: StdRng,
    normal: Normal<f32>,
}

impl RandomWeights {
    pub fn new(seed: u64, std: f32) -> Self {
        RandomWeights { rng: StdRng::seed_from_u64(seed), normal: Normal::new(0.0, std).expect("finite std") }
    }
}

impl WeightSource for RandomWeights {
    fn fetch(&mut self, _key: &str, shape: &[usize]) -> Result<HostTensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.normal.sample(&mut self.rng)).collect();
        Ok(HostTensor::from_f32(shape, &values))
    }
    fn finish(&self) -> Result<()> {
        Ok(())
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
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": st_dtype_name(t.dtype), "shape": t.shape.dims(), "data_offsets": [offset, end]}),
        );
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
    write_atomically(path, &bytes)
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so an
/// interrupted write never leaves a partial file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |msg: String| Error::File { path: path.to_path_buf(), msg };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| err("not a file path".into()))?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(format!("cannot write: {e}")));
    }
    Ok(())
}

/// The tensors of a fixture (x, t, y, out) or any small file, by key.
pub fn read_all(path: impl AsRef<Path>) -> Result<HashMap<String, HostTensor>> {
    let file = SafetensorsFile::open(path)?;
    file.keys().into_iter().map(|k| file.tensor(&k).map(|t| (k, t))).collect()
}
