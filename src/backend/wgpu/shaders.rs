//! The WGSL sources (shaders/, one file per op, embedded), their dtype variants, and the
//! pipelines built from them: lazily, once per (shader, variant), cached for the backend's
//! life.
//!
//! An op shader declares its storage types as aliases (`alias elem = f32;`); a variant
//! rewrites those lines (`alias elem = f16;`) and, for f16, puts `enable f16;` first; on a
//! device without SHADER_F16 the f16 storage is packed in u32 pairs instead (`packed`). So one
//! source serves every dtype. Likewise a dispatch may redeclare a `const NAME: u32` (attention's
//! head dim and keys per block). Helpers shared by several shaders live in shaders/lib/ and are
//! prepended to the shaders that list them.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::device::{err, Gpu};
use super::packed;
use crate::error::Result;
use crate::tensor::DType;

/// The text of shaders/<parts...>.
macro_rules! wgsl {
    ($($part:expr),+) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $($part),+))
    };
}

const ACTIVATION: &str = wgsl!("lib/activation.wgsl");
const BLOCK_NORM: &str = wgsl!("lib/block_norm.wgsl");
const FLAT_INDEX: &str = wgsl!("lib/flat_index.wgsl");
const GROUP_SLICES: &str = wgsl!("lib/group_slices.wgsl");
const PER_ELEMENT: &str = wgsl!("lib/per_element.wgsl");
const TILED_MATMUL: &str = wgsl!("lib/tiled_matmul.wgsl");
const WORKGROUP_SUM: &str = wgsl!("lib/workgroup_sum.wgsl");

/// One shader: its name (the op's), the lib helpers it needs, and its own source.
pub(super) struct Shader {
    pub name: &'static str,
    libs: &'static [&'static str],
    source: &'static str,
}

#[cfg(test)]
impl Shader {
    /// A shader of the tests' own, without helpers.
    pub(super) const fn inline(name: &'static str, source: &'static str) -> Shader {
        Shader { name, libs: &[], source }
    }
}

macro_rules! shader {
    ($name:ident, $file:literal, [$($lib:ident),*]) => {
        pub(super) const $name: Shader = Shader { name: $file, libs: &[$($lib),*], source: wgsl!($file, ".wgsl") };
    };
}

shader!(GEMM, "gemm", [FLAT_INDEX, ACTIVATION, TILED_MATMUL]);
shader!(TMSA_QKV, "tmsa_qkv", [FLAT_INDEX, TILED_MATMUL]);
shader!(SKIP_CONCAT_LINEAR, "skip_concat_linear", [FLAT_INDEX, TILED_MATMUL]);
shader!(CONV2D, "conv2d", [FLAT_INDEX, TILED_MATMUL]);
shader!(ATTENTION, "attention", []);
shader!(ATTENTION_SCORES, "attention_scores", [FLAT_INDEX, TILED_MATMUL]);
shader!(ATTENTION_SOFTMAX, "attention_softmax", [FLAT_INDEX]);
shader!(ATTENTION_VALUES, "attention_values", [FLAT_INDEX, TILED_MATMUL]);
shader!(LAYERNORM, "layernorm", [FLAT_INDEX, WORKGROUP_SUM, BLOCK_NORM]);
shader!(LAYERNORM_MODULATE, "layernorm_modulate", [FLAT_INDEX, WORKGROUP_SUM, BLOCK_NORM]);
shader!(GROUP_NORM_STATS, "group_norm_stats", [FLAT_INDEX, WORKGROUP_SUM, GROUP_SLICES]);
shader!(GROUP_NORM, "group_norm", [FLAT_INDEX, ACTIVATION, GROUP_SLICES]);
shader!(ADD, "add", [FLAT_INDEX, PER_ELEMENT]);
shader!(UNARY, "unary", [FLAT_INDEX, PER_ELEMENT, ACTIVATION]);
shader!(GATE_RESIDUAL, "gate_residual", [FLAT_INDEX, PER_ELEMENT]);
shader!(PATCHIFY, "patchify", [FLAT_INDEX, PER_ELEMENT]);
shader!(UNPATCHIFY, "unpatchify", [FLAT_INDEX, PER_ELEMENT]);
shader!(UPSAMPLE2X, "upsample2x", [FLAT_INDEX, PER_ELEMENT]);
shader!(COPY3D, "copy3d", [FLAT_INDEX, PER_ELEMENT]);
shader!(EMBEDDING, "embedding", [FLAT_INDEX, PER_ELEMENT]);
shader!(TIMESTEP_EMBEDDING, "timestep_embedding", [FLAT_INDEX, PER_ELEMENT]);

/// The storage type of each alias a shader declares, e.g. [("elem", F16)].
pub(super) type Variant = Vec<(&'static str, DType)>;

/// Values for `const` declarations of a shader, e.g. [("HEAD_DIM", 72), ("BLOCK_KV", 8)].
pub(super) type Consts = Vec<(&'static str, u32)>;

fn wgsl_type(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F16 => Ok("f16"),
        DType::U32 => Ok("u32"),
        DType::BF16 => Err(err("bf16 is not supported (WGSL has no bf16 type)")),
    }
}

/// `source` with its line that starts `declared` (up to the `;`) made `replacement`.
fn redeclare(shader: &Shader, source: &str, declared: &str, replacement: &str) -> Result<String> {
    let start = source.find(declared).ok_or_else(|| err(format!("shader {} declares no `{declared}`", shader.name)))?;
    let end = start + source[start..].find(';').ok_or_else(|| err(format!("shader {}: `{declared}` has no `;`", shader.name)))?;
    Ok([&source[..start], replacement, &source[end..]].concat())
}

/// The module source of `shader` for `variant`, with `consts` redeclared. f16 aliases are
/// native f16 where the device has SHADER_F16 (`native_f16`), else f32 with the storage they
/// name packed in u32 pairs (`packed`).
pub(super) fn specialize(shader: &Shader, variant: &[(&str, DType)], consts: &[(&str, u32)], native_f16: bool) -> Result<String> {
    let mut source = shader.source.to_string();
    let packed: Vec<&str> = variant.iter().filter(|&&(_, d)| d == DType::F16 && !native_f16).map(|&(alias, _)| alias).collect();
    for &(alias, dtype) in variant.iter().filter(|(alias, _)| !packed.contains(alias)) {
        source = redeclare(shader, &source, &format!("alias {alias} = f32;"), &format!("alias {alias} = {}", wgsl_type(dtype)?))?;
    }
    for &(name, value) in consts {
        source = redeclare(shader, &source, &format!("const {name}: u32 = "), &format!("const {name}: u32 = {value}u"))?;
    }
    if !packed.is_empty() {
        source = packed::pack_f16(shader.name, &source, &packed)?;
    }
    let enable = if native_f16 && variant.iter().any(|&(_, d)| d == DType::F16) { "enable f16;\n" } else { "" };
    Ok([enable].into_iter().chain(shader.libs.iter().copied()).chain([source.as_str()]).collect())
}

/// A compiled shader and the layout of its bind group 0.
pub(super) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(super) struct Pipelines {
    cache: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
}

/// A pipeline's shader (by name), variant and constants.
type PipelineKey = (&'static str, Variant, Consts);

impl Pipelines {
    /// The pipeline of `shader` for `variant` and `consts`, built on first use.
    pub fn get(&self, gpu: &Gpu, shader: &Shader, variant: &Variant, consts: &Consts) -> Result<Arc<Pipeline>> {
        let key = (shader.name, variant.clone(), consts.clone());
        if let Some(p) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let source = specialize(shader, variant, consts, gpu.f16)?;
        let what = format!("building shader {} {variant:?} {consts:?}", shader.name);
        let pipeline = gpu.scoped(&what, || {
            let module = gpu
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(shader.name), source: wgpu::ShaderSource::Wgsl(source.into()) });
            let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                // Every shader stores its workgroup memory before loading it (the access model's
                // table asserts it, scripts/check_shaders.sh), so wgpu's zeroing pass at the top of
                // each workgroup is wasted work.
                compilation_options: wgpu::PipelineCompilationOptions { zero_initialize_workgroup_memory: false, ..Default::default() },
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            Pipeline { pipeline, layout }
        })?;
        let pipeline = Arc::new(pipeline);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shader the driver rejects is a one-line error naming the shader, not a panic. Needs an
    /// adapter: CI (where lavapipe is installed) fails without one, elsewhere the test skips.
    #[test]
    fn rejected_shader_is_a_one_line_error_naming_it() {
        let gpu = match super::super::adapter::choose().and_then(|a| Gpu::new(a, Default::default())) {
            Ok(gpu) => gpu,
            Err(e) if std::env::var_os("CI").is_none() => return eprintln!("skipped: {e}"),
            Err(e) => panic!("CI needs a wgpu adapter: {e}"),
        };
        const BROKEN: Shader = Shader { name: "broken_on_purpose", libs: &[], source: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }" };
        let msg = match Pipelines::default().get(&gpu, &BROKEN, &Vec::new(), &Vec::new()) {
            Ok(_) => panic!("a shader assigning a float to a u32 compiled"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("building shader broken_on_purpose"), "{msg}");
        assert!(!msg.contains('\n'), "not one line: {msg}");
    }
}
