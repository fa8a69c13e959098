//! U-ViT forward vs the PyTorch reference outputs (tests/fixtures/uvit_*, from weights-tools),
//! the paper's parameter counts, and a plan for every released config.
use ditrt::models::uvit::{UvitConfig, PRESETS};
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::verify::default_tolerance;

use ditrt::models::weight_source::ZeroWeights;

use crate::check_model_fixtures;

/// The class-conditional and unconditional fixtures (uvit_t2i_* are uvit_t2i.rs's).
const PREFIXES: [&str; 2] = ["uvit_cond", "uvit_uncond"];

#[test]
fn uvit_matches_pytorch_f32() {
    for prefix in PREFIXES {
        check_model_fixtures(prefix, DType::F32, 1e-5);
    }
}

#[test]
fn uvit_matches_pytorch_half_precision() {
    for prefix in PREFIXES {
        for dtype in [DType::F16, DType::BF16] {
            check_model_fixtures(prefix, dtype, default_tolerance(dtype));
        }
    }
}

fn params(preset: &str) -> usize {
    ModelConfig::Uvit(UvitConfig::preset(preset).unwrap()).param_count()
}

#[test]
fn uvit_counts_match_the_paper() {
    // The paper's U-ViT-S/M/L/H: 44.3M (CIFAR-10 S/2; CelebA S/4 rounds the same), 130.9M
    // (ImageNet 64 M/4), 286.8M (ImageNet 256 L/2; ImageNet 64 L/4 rounds the same) and 500.8M
    // (ImageNet 256 H/2).
    for (preset, exact, published) in [
        ("U-ViT-S/2-CIFAR10", 44_255_328, 44.3),
        ("U-ViT-S/4-CelebA64", 44_292_228, 44.3),
        ("U-ViT-M/4-ImageNet64", 130_940_292, 130.9),
        ("U-ViT-L/4-ImageNet64", 286_827_652, 286.8),
        ("U-ViT-L/2-ImageNet256", 286_763_172, 286.8),
        ("U-ViT-H/2-ImageNet256", 500_832_016, 500.8),
    ] {
        let n = params(preset);
        assert_eq!(n, exact, "{preset}");
        assert_eq!((n as f64 / 1e5).round() / 10.0, published, "{preset}");
    }
    // The 512 px models carry larger patch embeddings and decoders (p = 4 on 4 channels).
    assert_eq!(params("U-ViT-L/4-ImageNet512"), 286_861_524);
    assert_eq!(params("U-ViT-H/4-ImageNet512"), 500_942_656);
}

#[test]
fn uvit_macs_count_every_linear_and_attention() {
    let cfg = UvitConfig::preset("U-ViT-H/2-ImageNet256").unwrap();
    let (n, l, d) = (258.0, 256.0, 1152.0);
    let block = n * 12.0 * d * d + 2.0 * n * n * d;
    let want = l * 16.0 * d + 29.0 * block + 14.0 * n * 2.0 * d * d + l * d * 16.0;
    assert_eq!(ModelConfig::Uvit(cfg).macs_per_image(), want);
}

#[test]
fn every_uvit_preset_builds_a_plan() {
    for preset in PRESETS {
        let cfg = UvitConfig::preset(preset.name).unwrap();
        let blocks = 2 * (cfg.depth / 2) + 1;
        let model = ModelConfig::Uvit(cfg.clone());
        assert_eq!(model.num_classes(), (preset.num_classes > 0).then_some(preset.num_classes), "{}", preset.name);
        let graph = model.build(&mut ZeroWeights(DType::BF16), 2, DType::BF16).unwrap_or_else(|e| panic!("{}: {e}", preset.name));
        let count = |op: &str| graph.ops().iter().filter(|o| o.name() == op).count();
        assert_eq!(count("attention"), blocks, "{}", preset.name);
        assert_eq!(count("skip_concat_linear"), cfg.depth / 2, "{}", preset.name);
        assert_eq!(count("conv2d"), usize::from(cfg.conv), "{}", preset.name);
        assert_eq!(count("embedding"), usize::from(preset.num_classes > 0), "{}", preset.name);
        assert!(graph.plan.arena_bytes > 0 && graph.peak_bytes() > graph.weight_bytes(), "{}", preset.name);
        println!("{}: {} ops, arena {} MiB", preset.name, graph.ops().len(), graph.plan.arena_bytes >> 20);
    }
}
