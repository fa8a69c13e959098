//! U-ViT text-to-image forward vs the PyTorch reference outputs (tests/fixtures/uvit_t2i_*,
//! from weights-tools), the paper's parameter counts, a plan for both MS-COCO presets, its
//! official sampling, and the errors of a damaged model or fixture.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::io::safetensors::{read_all, write_safetensors, SafetensorsFile, CONFIG_KEY};
use ditrt::models::backbone::ContextIo;
use ditrt::models::uvit_t2i::{UvitT2iConfig, PRESETS};
use ditrt::models::weight_source::ZeroWeights;
use ditrt::models::ModelConfig;
use ditrt::sampling::recipe::{GuidanceForm, Recipe, SamplerName};
use ditrt::sampling::NoiseSchedule;
use ditrt::tensor::{DType, HostTensor};
use ditrt::tools::verify::{default_tolerance, verify_fixture};

use crate::weights::assert_names;
use crate::{check_model_fixtures, ditrt, fixture};

#[test]
fn uvit_t2i_matches_pytorch_f32() {
    check_model_fixtures("uvit_t2i_", DType::F32, 1e-5);
}

#[test]
fn uvit_t2i_matches_pytorch_half_precision() {
    for dtype in [DType::F16, DType::BF16] {
        check_model_fixtures("uvit_t2i_", dtype, default_tolerance(dtype));
    }
}

fn preset(name: &str) -> ModelConfig {
    ModelConfig::UvitT2i(UvitT2iConfig::preset(name).unwrap())
}

#[test]
fn uvit_t2i_counts_match_the_paper() {
    // The paper's MS-COCO models: U-ViT-S/2 45M, U-ViT-S/2 (Deep) 58M parameters.
    for (name, published) in [("U-ViT-S/2-MSCOCO", 45.0), ("U-ViT-S/2-Deep-MSCOCO", 58.0)] {
        let n = preset(name).param_count();
        assert_eq!((n as f64 / 1e6).round(), published, "{name}: {n}");
    }
    // S/2 on 256 patches: 1 + 77 + 256 tokens, the context's Linear 768 -> 512 on 77 of them.
    let (n, l, d) = (334.0, 256.0, 512.0);
    let block = n * 12.0 * d * d + 2.0 * n * n * d;
    let want = l * 16.0 * d + 13.0 * block + 6.0 * n * 2.0 * d * d + l * d * 16.0 + 1024.0 * 16.0 * 9.0 + 77.0 * 768.0 * d;
    assert_eq!(preset("U-ViT-S/2-MSCOCO").macs_per_image(), want);
}

#[test]
fn every_uvit_t2i_preset_builds_a_plan_with_a_context_input() {
    for &(name, depth) in PRESETS {
        let model = preset(name);
        assert_eq!(model.io().context, Some(ContextIo { tokens: 77, dim: 768 }), "{name}");
        assert_eq!((model.num_classes(), model.null_class()), (None, None), "{name}");
        let graph = model.build(&mut ZeroWeights(DType::BF16), 2, DType::BF16).unwrap_or_else(|e| panic!("{name}: {e}"));
        let count = |op: &str| graph.ops().iter().filter(|o| o.name() == op).count();
        assert_eq!(count("attention"), depth + 1, "{name}");
        assert_eq!(count("skip_concat_linear"), depth / 2, "{name}");
        assert_eq!((count("conv2d"), count("embedding")), (1, 0), "{name}");
        assert!(graph.plan.arena_bytes > 0 && graph.peak_bytes() > graph.weight_bytes(), "{name}");
    }
}

#[test]
fn uvit_t2i_samples_as_the_official_script_with_guidance() {
    // DPM-Solver++ on SD's discrete betas, 50 evaluations, ε = ε_c + 1.0 (ε_c − ε_u): guided
    // although the model has no null class (its unconditional half is the empty prompt).
    let sampling = preset("U-ViT-S/2-MSCOCO").sampling().unwrap();
    assert_eq!(sampling.official, Recipe { sampler: SamplerName::DpmSolver, steps: 50, cfg_scale: 1.0, eta: 0.0, schedule: None });
    assert_eq!((sampling.schedule, sampling.guidance), (NoiseSchedule::StableDiffusion, GuidanceForm::Uvit));
}

/// A copy of the `uvit_t2i_conv` model (in `dir`) with `edit` applied to its tensors, and the
/// error of verifying it on `fixture_path`.
fn damaged_model_error(dir: &Path, edit: impl FnOnce(&mut Vec<(String, HostTensor)>), fixture_path: &Path) -> String {
    let file = SafetensorsFile::open(fixture("uvit_t2i_conv.safetensors")).unwrap();
    let mut tensors: Vec<(String, HostTensor)> = file.keys().into_iter().map(|k| (k.clone(), file.tensor(&k).unwrap())).collect();
    edit(&mut tensors);
    let refs: Vec<(&str, &HostTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let path = dir.join("model.safetensors");
    write_safetensors(&path, &refs, &BTreeMap::from([(CONFIG_KEY.to_string(), file.metadata(CONFIG_KEY).unwrap().to_string())])).unwrap();
    match verify_fixture(Arc::new(CpuBackend::new()), &path, fixture_path, DType::F32) {
        Ok(c) => panic!("expected an error, got rel_l2 {}", c.rel_l2),
        Err(e) => e.to_string(),
    }
}

#[test]
fn uvit_t2i_key_shape_and_context_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let committed = fixture("uvit_t2i_conv.fixture.safetensors");
    let msg = damaged_model_error(dir.path(), |t| t.retain(|(k, _)| k != "context_embed.bias"), &committed);
    assert_names(&msg, &["model.safetensors", "context_embed.bias", "missing"]);
    let wide = |t: &mut Vec<(String, HostTensor)>| {
        let entry = t.iter_mut().find(|(k, _)| k == "context_embed.weight").unwrap();
        entry.1 = HostTensor::from_f32([32, 8], &entry.1.to_f32()[..256]);
    };
    let msg = damaged_model_error(dir.path(), wide, &committed);
    assert_names(&msg, &["context_embed.weight", "expected shape [32, 16]", "found [32, 8]"]);

    // A fixture without the context, or with one of another width, is named as the fixture's.
    let inputs = read_all(&committed).unwrap();
    for (name, context) in [("nocontext", None), ("narrow", Some(HostTensor::from_f32([3, 77, 8], &vec![0.0; 3 * 77 * 8])))] {
        let path = dir.path().join(format!("{name}.fixture.safetensors"));
        let mut tensors: Vec<(&str, &HostTensor)> = inputs.iter().filter(|(k, _)| *k != "context").map(|(k, t)| (k.as_str(), t)).collect();
        if let Some(context) = &context {
            tensors.push(("context", context));
        }
        write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();
        let msg = damaged_model_error(dir.path(), |_| (), &path);
        let want = if context.is_some() { "[3, 77, 16]" } else { "missing from fixture" };
        assert_names(&msg, &[&format!("{name}.fixture.safetensors"), "context", want]);
    }
}

#[test]
fn uvit_t2i_benches_with_a_random_context() {
    let (code, out, err) = ditrt(&[
        "bench",
        "--arch",
        "uvit_t2i",
        "--preset",
        "U-ViT-S/2-MSCOCO",
        "--batch",
        "1",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"ms_per_forward\""), "{out}");
}
