//! In-context transformer LDM forward vs the PyTorch reference outputs (tests/fixtures/tldm_*,
//! from weights-tools), counts, and a plan for every preset.
use ditrt::models::dit::DitConfig;
use ditrt::models::tldm::TldmConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::verify::default_tolerance;

use ditrt::models::weight_source::ZeroWeights;

use crate::check_model_fixtures;

#[test]
fn tldm_matches_pytorch_f32() {
    check_model_fixtures("tldm_", DType::F32, 1e-5);
}

#[test]
fn tldm_matches_pytorch_half_precision() {
    for dtype in [DType::F16, DType::BF16] {
        check_model_fixtures("tldm_", dtype, default_tolerance(dtype));
    }
}

#[test]
fn tldm_counts_follow_from_dit() {
    // TLDM-XL/2 = DiT-XL/2 without adaLN (28 x (6D^2 + 6D) + 2D^2 + 2D) and with affine
    // LayerNorms (28 x 4D + 2D).
    let d = 1152;
    let dit = ModelConfig::Dit(DitConfig::preset("DiT-XL/2").unwrap()).param_count();
    let tldm = ModelConfig::Tldm(TldmConfig::preset("TLDM-XL/2").unwrap());
    assert_eq!(tldm.param_count(), dit - 28 * (6 * d * d + 6 * d) - (2 * d * d + 2 * d) + 28 * 4 * d + 2 * d);
    assert_eq!(tldm.param_count(), 449_457_440);
    // 256 patch tokens + time + class attend; the output linear sees the patches only.
    let (n, l, d) = (258.0, 256.0, 1152.0);
    let want = l * 16.0 * d + 256.0 * d + d * d + 28.0 * (n * 12.0 * d * d + 2.0 * n * n * d) + l * d * 32.0;
    assert_eq!(tldm.macs_per_image(), want);
}

#[test]
fn every_tldm_preset_builds_a_plan() {
    for size in ["S", "B", "L", "XL"] {
        for patch in [2, 4, 8] {
            for res in [256, 512] {
                let name = format!("TLDM-{size}/{patch}-{res}");
                let cfg = TldmConfig::preset(&name).unwrap_or_else(|| panic!("{name}"));
                assert_eq!((cfg.input_size, cfg.patch_size), (res / 8, patch), "{name}");
                let depth = cfg.depth;
                let graph = ModelConfig::Tldm(cfg).build(&mut ZeroWeights(DType::BF16), 1, DType::BF16).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(graph.ops().iter().filter(|o| o.name() == "attention").count(), depth, "{name}");
                assert!(graph.plan.arena_bytes > 0, "{name}");
            }
        }
    }
    assert_eq!(TldmConfig::preset("TLDM-XL/2"), TldmConfig::preset("TLDM-XL/2-256"));
    assert!(TldmConfig::preset("TLDM-XL/3").is_none() && TldmConfig::preset("DiT-XL/2").is_none());
}
