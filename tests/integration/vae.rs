//! SD KL-f8 VAE decoder vs the PyTorch reference outputs (tests/fixtures/vae_*: `x` the latent,
//! `out` the image), counts, preset plans.
use ditrt::models::vae::VaeConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::verify::default_tolerance;

use ditrt::models::weight_source::ZeroWeights;

use crate::check_model_fixtures;

#[test]
fn vae_matches_pytorch_f32() {
    check_model_fixtures("vae_", DType::F32, 1e-5);
}

#[test]
fn vae_matches_pytorch_half_precision() {
    for dtype in [DType::F16, DType::BF16] {
        check_model_fixtures("vae_", dtype, default_tolerance(dtype));
    }
}

#[test]
fn sd_vae_decoder_counts() {
    let cfg = ModelConfig::Vae(VaeConfig::preset("SD-VAE-KL-f8").unwrap());
    // diffusers AutoencoderKL (SD): decoder 49,490,179 + post_quant_conv 4x4+4.
    assert_eq!(cfg.param_count(), 49_490_179 + 20);
    // torch.utils.flop_counter on weights-tools/archs/vae/reference.py, 32x32 latent: 311.09 GMAC.
    assert_eq!(cfg.macs_per_image(), 311_093_641_216.0);
}

#[test]
fn vae_is_not_a_denoiser() {
    let cfg = ModelConfig::Vae(VaeConfig::preset("SD-VAE-KL-f8-512").unwrap());
    assert_eq!(cfg.num_classes(), None);
    assert_eq!(cfg.null_class(), None);
    assert_eq!(cfg.output_channels(), 3);
    let g = cfg.input_geometry();
    assert_eq!((g.channels, g.height, g.width), (4, 64, 64));
    assert!(cfg.sampling().is_err());
}

#[test]
fn vae_presets_build() {
    for name in ["SD-VAE-KL-f8", "SD-VAE-KL-f8-512"] {
        let cfg = ModelConfig::Vae(VaeConfig::preset(name).unwrap_or_else(|| panic!("{name}")));
        cfg.build(&mut ZeroWeights(DType::BF16), 1, DType::BF16).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
