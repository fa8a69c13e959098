//! DiffiT (latent and image-space) forward vs the PyTorch reference outputs
//! (tests/fixtures/diffit_p*, diffit_unet_*, from weights-tools), counts, preset plans.
use ditrt::models::diffit::DiffitConfig;
use ditrt::models::diffit_block::relative_position_index;
use ditrt::models::diffit_unet::DiffitUnetConfig;
use ditrt::models::dit::DitConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::verify::default_tolerance;

use ditrt::models::weight_source::ZeroWeights;

use crate::check_model_fixtures;

const PREFIXES: [&str; 2] = ["diffit_p", "diffit_unet_"];

#[test]
fn diffit_matches_pytorch_f32() {
    for prefix in PREFIXES {
        check_model_fixtures(prefix, DType::F32, 1e-5);
    }
}

#[test]
fn diffit_matches_pytorch_half_precision() {
    for prefix in PREFIXES {
        for dtype in [DType::F16, DType::BF16] {
            check_model_fixtures(prefix, dtype, default_tolerance(dtype));
        }
    }
}

#[test]
fn diffit_xl2_counts() {
    let cfg = ModelConfig::Diffit(DiffitConfig::preset("DiffiT-XL/2").unwrap());
    // The paper's 561.3M: model.parameters(), i.e. with pos_embed and the bias tables, without
    // the 28 relative_position_index buffers (28 x 256^2 more in the state_dict).
    assert_eq!(cfg.param_count(), 561_330_144);
    // DiT-XL/2 less adaLN (6D^2 per block, 2D^2 final) plus the per-sample time term (3D^2).
    let d = 1152.0;
    let dit = ModelConfig::Dit(DitConfig::preset("DiT-XL/2").unwrap()).macs_per_image();
    assert_eq!(cfg.macs_per_image(), dit - 28.0 * 3.0 * d * d - 2.0 * d * d);
    // torch.utils.flop_counter on weights-tools/archs/diffit/reference.py: 118,507,290,624 MACs.
    assert_eq!(cfg.macs_per_image(), 118_507_290_624.0);
}

#[test]
fn relative_position_index_is_swins() {
    // Window 2: tokens (0,0) (0,1) (1,0) (1,1); index = (dy + 1) * 3 + (dx + 1).
    assert_eq!(relative_position_index(2), vec![4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
    let index = relative_position_index(16);
    assert_eq!(index.iter().max(), Some(&(31 * 31 - 1)));
    assert!((0..256).all(|i| index[i * 256 + i] == 15 * 31 + 15));
}

#[test]
fn diffit_presets_build() {
    // At 512 px the position table and the bias tables grow with the 32x32 patch grid.
    let xl512 = DiffitConfig::preset("DiffiT-XL/2-512").unwrap();
    assert_eq!((xl512.input_size, xl512.depth, xl512.hidden_size), (64, 28, 1152));
    let grown = 768 * 1152 + 28 * 16 * (63 * 63 - 31 * 31);
    assert_eq!(ModelConfig::Diffit(xl512).param_count(), 561_330_144 + grown);
    // The 256 px plan (its dense biases are 28 x 16 x 256^2 values).
    let cfg = ModelConfig::Diffit(DiffitConfig::preset("DiffiT-XL/2").unwrap());
    cfg.build(&mut ZeroWeights(DType::BF16), 1, DType::BF16).unwrap();
    let cifar = ModelConfig::DiffitUnet(DiffitUnetConfig::preset("DiffiT-CIFAR10").unwrap());
    assert_eq!(cifar.num_classes(), None);
    assert_eq!(cifar.output_channels(), 3);
    cifar.build(&mut ZeroWeights(DType::BF16), 2, DType::F32).unwrap();
}

#[test]
fn diffit_unet_rejects_windows_that_do_not_tile() {
    let mut cfg = DiffitUnetConfig::preset("DiffiT-CIFAR10").unwrap();
    cfg.window_size = 6;
    let err = ModelConfig::from_json(&ModelConfig::DiffitUnet(cfg).to_json(), std::path::Path::new("x.json")).unwrap_err();
    assert!(err.to_string().contains("not a multiple of its window 6"), "{err}");
}
