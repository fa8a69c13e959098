//! Every wgpu dispatch of the released models at their largest shapes fits the adapter's grid:
//! each graph is planned with zero weights (pages never touched) and every op lowered to its
//! workgroup grids on WebGPU's default limits, with WebGPU's 128 MiB per storage binding and with
//! Vulkan's and DX12's 2 GiB - 1 (fewer blocks, larger grids), which must stay within 65535 per
//! dimension. Nothing is allocated on a device or run, so no adapter is needed (the run at a
//! size that broke: `ops::conv2d_beyond_one_grid_dimension`).
use ditrt::backend::wgpu::workgroups;
use ditrt::models::weight_source::ZeroWeights;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;

/// WebGPU's default workgroups per dimension, and what lavapipe and Vulkan drivers give for y
/// and z (wgpu takes the least of x, y and z).
const GRID_DIM: u32 = 65535;

/// Bytes per storage binding: WebGPU's default, and the most wgpu gives on Vulkan and DX12.
const BINDING_BYTES: [u64; 2] = [128 << 20, (1 << 31) - 1];

/// (preset, batch): every backbone and the VAE decoder at its largest resolution, at batches a
/// sampling run uses (DiT's FID runs sample 256 images per step at 256 px), the VAE's as large
/// as the shaders' 32-bit indexing allows (its 256-channel 512 x 512 views: 2^31 elements at
/// batch 32; tiles of 64 output pixels: 4096 per 512 px image, so a split grid from batch 16).
const SHAPES: &[(&str, usize)] = &[
    ("DiT-XL/2", 256),
    ("DiT-XL/2-512", 64),
    ("TLDM-XL/2", 256),
    ("TLDM-XL/2-512", 64),
    ("DiffiT-XL/2", 256),
    ("DiffiT-XL/2-512", 64),
    ("DiffiT-CIFAR10", 256),
    ("U-ViT-H/2-ImageNet256", 256),
    ("U-ViT-H/4-ImageNet512", 64),
    ("SD-VAE-KL-f8", 128),
    ("SD-VAE-KL-f8-512", 32),
];

#[test]
fn every_wgpu_grid_of_the_largest_models_fits() {
    let mut split = std::collections::BTreeSet::new();
    for &(preset, batch) in SHAPES {
        let config = ModelConfig::preset_any(preset).unwrap();
        let graph = config.build(&mut ZeroWeights(DType::F32), batch, DType::F32).unwrap_or_else(|e| panic!("{preset} batch {batch}: {e}"));
        for (i, op) in graph.ops().iter().enumerate() {
            for binding in BINDING_BYTES {
                let grids = workgroups(op, GRID_DIM, binding)
                    .unwrap_or_else(|e| panic!("{preset} batch {batch}, op {i} ({}), binding limit {binding}: {e}", op.name()));
                if grids.iter().any(|grid| grid[0] == GRID_DIM && grid[1] > 1) {
                    split.insert(op.name());
                }
            }
        }
    }
    // The audit reaches the sizes that broke: conv2d with more tiles than one dimension holds.
    assert!(split.contains("conv2d"), "no conv2d needed a split grid (split: {split:?}): the shapes are too small to audit the limit");
}
