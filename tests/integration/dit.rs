//! DiT forward vs the PyTorch reference outputs (tests/fixtures, from weights-tools).
use ditrt::models::dit::DitConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::verify::default_tolerance;

use crate::check_model_fixtures;

#[test]
fn dit_matches_pytorch_f32() {
    check_model_fixtures("dit_", DType::F32, 1e-5);
}

#[test]
fn dit_matches_pytorch_half_precision() {
    for dtype in [DType::F16, DType::BF16] {
        check_model_fixtures("dit_", dtype, default_tolerance(dtype));
    }
}

#[test]
fn dit_xl2_counts_match_the_paper() {
    let cfg = ModelConfig::Dit(DitConfig::preset("DiT-XL/2").unwrap());
    assert_eq!(cfg.param_count(), 675_129_632);
    // The paper's 118.6 Gflops are multiply-adds.
    assert!((cfg.macs_per_image() / 1e9 - 118.6).abs() < 0.05, "{}", cfg.macs_per_image());
}

#[test]
fn every_official_preset_builds_a_plan() {
    for size in ["S", "B", "L", "XL"] {
        for patch in [2, 4, 8] {
            for res in [256, 512] {
                let name = format!("DiT-{size}/{patch}-{res}");
                let cfg = DitConfig::preset(&name).unwrap_or_else(|| panic!("{name}"));
                assert_eq!(cfg.input_size, res / 8);
                assert!(ModelConfig::Dit(cfg).param_count() > 30_000_000, "{name}");
            }
        }
    }
}

#[test]
fn arena_shares_memory_between_blocks() {
    use ditrt::models::weight_source::RandomWeights;
    let cfg = ModelConfig::Dit(DitConfig::preset("DiT-S/4").unwrap());
    let graph = cfg.build(&mut RandomWeights::new(1, 0.02), 2, DType::F32).unwrap();
    // 12 blocks each make ~8 intermediates; a shared arena holds only a block's worth.
    assert!(graph.plan.arena_bytes * 4 < graph.plan.unshared_bytes, "{:?}", graph.plan);
    assert!(graph.peak_bytes() > graph.weight_bytes());
}
