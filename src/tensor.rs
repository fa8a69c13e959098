//! Element types, shapes and host-side tensors.
use crate::error::{Error, Result};
use half::{bf16, f16};

/// Storage type of a buffer. Floating types compute in f32; `U32` holds indices (class labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    U32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U32 => "u32",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(DType::F32),
            "f16" | "float16" | "fp16" | "half" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(Error::invalid(format!("unknown dtype '{s}' (expected f32, f16 or bf16)"))),
        }
    }

    pub fn is_float(self) -> bool {
        self != DType::U32
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Row-major shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

/// A tensor in host memory: raw little-endian bytes of `dtype`, row-major `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Shape,
    pub dtype: DType,
    pub bytes: Vec<u8>,
}

impl HostTensor {
    pub fn from_f32(shape: impl Into<Shape>, data: &[f32]) -> Self {
        let shape = shape.into();
        assert_eq!(shape.numel(), data.len(), "HostTensor::from_f32: shape {shape} vs {} values", data.len());
        HostTensor { shape, dtype: DType::F32, bytes: bytemuck::cast_slice(data).to_vec() }
    }

    pub fn from_u32(shape: impl Into<Shape>, data: &[u32]) -> Self {
        let shape = shape.into();
        assert_eq!(shape.numel(), data.len(), "HostTensor::from_u32: shape {shape} vs {} values", data.len());
        HostTensor { shape, dtype: DType::U32, bytes: bytemuck::cast_slice(data).to_vec() }
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// Values as f32 (floating dtypes are converted; u32 is cast).
    pub fn to_f32(&self) -> Vec<f32> {
        bytes_to_f32(&self.bytes, self.dtype)
    }

    /// The same values stored as `dtype` (round to nearest even for f16/bf16).
    /// The tensor stored as `dtype`: itself, not a copy, when it already is.
    pub fn into_dtype(self, dtype: DType) -> HostTensor {
        if dtype == self.dtype {
            self
        } else {
            self.to_dtype(dtype)
        }
    }

    pub fn to_dtype(&self, dtype: DType) -> HostTensor {
        if dtype == self.dtype {
            return self.clone();
        }
        HostTensor { shape: self.shape.clone(), dtype, bytes: f32_to_bytes(&self.to_f32(), dtype) }
    }
}

/// Decode little-endian `bytes` of `dtype` into f32 values.
pub fn bytes_to_f32(bytes: &[u8], dtype: DType) -> Vec<f32> {
    let n = bytes.len() / dtype.size();
    let mut out = Vec::with_capacity(n);
    match dtype {
        DType::F32 => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        DType::U32 => out.extend(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)),
        DType::F16 => out.extend(bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())),
        DType::BF16 => out.extend(bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())),
    }
    out
}

/// Encode f32 values as little-endian bytes of `dtype`.
pub fn f32_to_bytes(values: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => bytemuck::cast_slice(values).to_vec(),
        DType::U32 => values.iter().flat_map(|v| (*v as u32).to_le_bytes()).collect(),
        DType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
        DType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
    }
}

/// Per-sample image shape: what a denoiser takes and returns, a decoder's latent and image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageGeometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}
