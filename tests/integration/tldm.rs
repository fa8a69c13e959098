//! In-context transformer LDM forward vs the PyTorch reference outputs (tests/fixtures/tldm_*,
//! from weights-tools; tldm_ctx_* with a text context), counts, a plan for every preset, and
//! the optional `context_dim`.
use std::path::Path;

use ditrt::models::backbone::ContextIo;
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

#[test]
fn tldm_context_dim_is_optional_and_adds_77_context_tokens() {
    let origin = Path::new("config.json");
    let plain = ModelConfig::Tldm(TldmConfig::preset("TLDM-S/2").unwrap());
    let json = plain.to_json();
    assert!(!json.contains("context_dim"), "{json}");
    assert_eq!(plain.io().context, None);
    let text = ModelConfig::from_json(&json.replace('}', ",\"context_dim\":768}"), origin).unwrap();
    assert_eq!(text.io().context, Some(ContextIo { tokens: 77, dim: 768 }));
    assert_eq!(ModelConfig::from_json(&text.to_json(), origin).unwrap(), text);
    assert_eq!(ModelConfig::from_json(&json.replace('}', ",\"context_dim\":null}"), origin).unwrap(), plain);
    // Unknown fields are still refused by name, a zero width by the field's.
    let err = ModelConfig::from_json(&json.replace('}', ",\"contxt_dim\":768}"), origin).unwrap_err().to_string();
    assert!(err.contains("contxt_dim") && err.contains("config.json"), "{err}");
    let err = ModelConfig::from_json(&json.replace('}', ",\"context_dim\":0}"), origin).unwrap_err().to_string();
    assert!(err.contains("context_dim must be positive"), "{err}");

    // context_embedder (Linear 768 -> 384 with bias) after the class table; 2 + 77 + 256 tokens.
    let shapes = text.param_shapes();
    let at = shapes.iter().position(|(k, _)| k == "context_embedder.weight").unwrap();
    assert_eq!(shapes[at - 1].0, "y_embedder.embedding_table.weight");
    assert_eq!((&shapes[at].1, &shapes[at + 1].1), (&vec![384, 768], &vec![384]));
    assert_eq!(text.param_count(), plain.param_count() + 768 * 384 + 384);
    let (d, block) = (384.0, |n: f64| n * 12.0 * 384.0 * 384.0 + 2.0 * n * n * 384.0);
    let more = 77.0 * 768.0 * d + 12.0 * (block(335.0) - block(258.0));
    assert!((text.macs_per_image() - plain.macs_per_image() - more).abs() < 1e-9 * more);
    let graph = text.build(&mut ZeroWeights(DType::F32), 2, DType::F32).unwrap();
    assert_eq!(graph.ops().iter().filter(|o| o.name() == "attention").count(), 12);
}
