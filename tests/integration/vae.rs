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
    let g = cfg.input_geometry().unwrap();
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

/// The decoder is fully convolutional: a file whose config names another latent size decodes
/// the fixture's latent just the same (`verify` builds for the `x` it is given), and samples the
/// same images (`sample` builds for the denoiser's latent).
#[test]
fn the_vae_decodes_the_latent_it_is_given() {
    use std::collections::BTreeMap;
    let original = crate::fixture("vae_f8.safetensors");
    let file = ditrt::io::safetensors::SafetensorsFile::open(&original).unwrap();
    let config = file.metadata("ditrt.config").unwrap().replace("\"latent_size\": 3", "\"latent_size\": 64");
    assert_ne!(config, file.metadata("ditrt.config").unwrap());
    let tensors: Vec<(String, _)> = file.keys().into_iter().map(|k| (k.clone(), file.tensor(&k).unwrap())).collect();
    let refs: Vec<(&str, _)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let dir = tempfile::tempdir().unwrap();
    let resized = dir.path().join("vae_latent64.safetensors");
    ditrt::io::safetensors::write_safetensors(&resized, &refs, &BTreeMap::from([("ditrt.config".to_string(), config)])).unwrap();
    let fixture = crate::fixture("vae_f8.fixture.safetensors");
    let (code, stdout, stderr) =
        crate::ditrt(&["verify", "--weights", resized.to_str().unwrap(), "--fixture", fixture.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let dit = crate::fixture("dit_p2.safetensors");
    // The run keys name the VAE file: compare the images (arr_0), not whole files.
    let images = |vae: &std::path::Path, name: &str| {
        let out = dir.path().join(name);
        let args =
            ["sample", "--weights", dit.to_str().unwrap(), "--vae", vae.to_str().unwrap(), "--steps", "2", "--num", "2", "--backend", "cpu", "-o"];
        let (code, _, stderr) = crate::ditrt(&[&args[..], &[out.to_str().unwrap()]].concat());
        assert_eq!(code, 0, "{stderr}");
        crate::sample_cli::read_npz(&out)
    };
    assert_eq!(images(&original, "a.npz"), images(&resized, "b.npz"));
}
