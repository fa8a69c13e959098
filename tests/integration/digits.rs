//! Every bundled digits model (one per backbone) makes the digits it is asked for: 10 samples of
//! each digit with the model's own recipe, classified by the bundled logistic-regression
//! classifier (weights-tools/train_digits.py), must be at least 90% right.
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::backend::Backend;
use ditrt::io::image::Images;
use ditrt::io::safetensors::read_all;
use ditrt::pipeline::bundled;
use ditrt::pipeline::generate::{Classes, RecipeOverrides, Run, SamplingModel};
use ditrt::tensor::DType;

const PER_DIGIT: usize = 10;

/// Predicted digit of each image: argmax(weight · pixels + bias), pixels mapped back to [-1, 1].
fn classify(images: &Images) -> Vec<usize> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/digits_classifier.safetensors");
    let tensors = read_all(path).expect("bundled classifier");
    let (weight, bias) = (tensors["weight"].to_f32(), tensors["bias"].to_f32());
    let pixels = images.height * images.width;
    assert_eq!(weight.len(), 10 * pixels, "classifier input size");
    (0..images.count)
        .map(|n| {
            let img: Vec<f32> = (0..pixels).map(|i| images.pixels[(n * pixels + i) * images.channels] as f32 / 127.5 - 1.0).collect();
            let logits: Vec<f32> =
                (0..10).map(|k| bias[k] + weight[k * pixels..(k + 1) * pixels].iter().zip(&img).map(|(w, x)| w * x).sum::<f32>()).collect();
            (0..10).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap()
        })
        .collect()
}

/// `per_digit` samples of each digit (digit-major order) from the bundled model `model` with
/// its own recipe, changed by `overrides`, on `backend`.
fn sample_digits(model: &str, backend: Arc<dyn Backend>, per_digit: usize, overrides: &RecipeOverrides) -> (Vec<u32>, Images) {
    let model = SamplingModel::new(bundled::open(model).unwrap(), overrides).unwrap();
    let labels: Vec<u32> = (0..10 * per_digit).map(|i| (i / per_digit) as u32).collect();
    let run = Run { seed: 2024, first_image: 0, classes: Classes::Cycle(labels.clone()), count: labels.len() as u64, noise: None };
    let mut pipeline = model.build(backend, DType::F32, labels.len(), None, None).unwrap();
    (labels, pipeline.generate(&run, &mut |_| {}).unwrap())
}

/// Share of images classified as their label; panics below 90%.
fn assert_recognised(labels: &[u32], images: &Images, backend: &str) {
    let mut right = [0usize; 10];
    for (want, got) in labels.iter().zip(classify(images)) {
        right[*want as usize] += (*want as usize == got) as usize;
    }
    let accuracy = right.iter().sum::<usize>() as f64 / labels.len() as f64;
    println!("{backend}: right per digit {right:?}, accuracy {accuracy:.2}");
    assert!(accuracy >= 0.9, "{backend}: only {:.0}% of samples classified as the digit asked for: {right:?}", 100.0 * accuracy);
}

fn assert_cpu_samples_recognised(model: &str) {
    let (labels, images) = sample_digits(model, Arc::new(CpuBackend::new()), PER_DIGIT, &RecipeOverrides::default());
    assert_recognised(&labels, &images, &format!("{model} on cpu"));
}

#[test]
fn bundled_dit_samples_are_the_digits_asked_for() {
    assert_cpu_samples_recognised("dit");
}

#[test]
fn bundled_uvit_samples_are_the_digits_asked_for() {
    assert_cpu_samples_recognised("uvit");
}

#[test]
fn bundled_diffit_samples_are_the_digits_asked_for() {
    assert_cpu_samples_recognised("diffit");
}

#[test]
fn bundled_tldm_samples_are_the_digits_asked_for() {
    assert_cpu_samples_recognised("tldm");
}

/// The phrasing families of the text-to-image model's captions (weights-tools/
/// train_t2i_digits.py CAPTIONS): each must draw the digit it names.
const WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
type Caption = fn(usize) -> String;
const FAMILIES: [(&str, Caption); 5] = [
    ("numeral", |d| d.to_string()),
    ("word", |d| WORDS[d].to_string()),
    ("handwritten", |d| format!("a handwritten {}", WORDS[d])),
    ("the digit", |d| format!("the digit {d}")),
    ("photo", |d| format!("a photo of the number {}", WORDS[d])),
];

/// `per_prompt` samples of each prompt (prompt-major order) from the bundled text-to-image
/// model with its own recipe and text encoder on `backend`.
fn sample_prompts(backend: Arc<dyn Backend>, prompts: &[String], per_prompt: usize) -> Images {
    let model = SamplingModel::new(bundled::open("uvit_t2i").unwrap(), &RecipeOverrides::default()).unwrap();
    let text_encoder = bundled::open_text_encoder("uvit_t2i").unwrap();
    let count = prompts.len() * per_prompt;
    let classes = Classes::Prompts { per_prompt: per_prompt as u64, prompts: prompts.len() as u32 };
    let run = Run { seed: 2024, first_image: 0, classes, count: count as u64, noise: None };
    let mut pipeline = model.build(backend, DType::F32, count.min(100), None, Some(&text_encoder)).unwrap();
    assert!(pipeline.set_prompts(prompts).unwrap().is_empty(), "a digit prompt was truncated");
    pipeline.generate(&run, &mut |_| {}).unwrap()
}

#[test]
fn bundled_text_to_image_model_draws_the_digit_every_phrasing_names() {
    for (family, caption) in FAMILIES {
        let prompts: Vec<String> = (0..10).map(caption).collect();
        let images = sample_prompts(Arc::new(CpuBackend::new()), &prompts, PER_DIGIT);
        let labels: Vec<u32> = (0..10 * PER_DIGIT).map(|i| (i / PER_DIGIT) as u32).collect();
        let mut right = [0usize; 10];
        for (want, got) in labels.iter().zip(classify(&images)) {
            right[*want as usize] += (*want as usize == got) as usize;
        }
        println!("uvit_t2i '{family}' prompts ({}, ...): right per digit {right:?}", prompts[7]);
        assert!(
            right.iter().all(|&r| r * 10 >= 9 * PER_DIGIT),
            "'{family}' prompts ({}, ...): fewer than 90% recognised for some digit: {right:?}",
            prompts[7]
        );
    }
}

#[test]
fn every_bundled_model_has_a_classifier_test() {
    let tested = ["dit", "uvit", "diffit", "tldm", "uvit_t2i"];
    for model in bundled::BUNDLED {
        assert!(tested.contains(&model.name), "bundled model '{}' has no classifier test in digits.rs", model.name);
    }
}

/// One sample of each digit from a bundled model: by class, or for the text-to-image model by
/// the prompts "a handwritten zero", ... The class-conditional U-ViT takes 10 of its recipe's
/// 50 DPM-Solver steps: on lavapipe each step costs the same, and its 50 made it half of this
/// test's time (the tests above sample its full recipe on the CPU).
fn one_of_each_digit(model: &str, backend: Arc<dyn Backend>) -> (Vec<u32>, Images) {
    if model == "uvit" {
        return sample_digits(model, backend, 1, &RecipeOverrides { steps: Some(10), ..Default::default() });
    }
    if model != "uvit_t2i" {
        return sample_digits(model, backend, 1, &RecipeOverrides::default());
    }
    let prompts: Vec<String> = (0..10).map(FAMILIES[2].1).collect();
    ((0..10).collect(), sample_prompts(backend, &prompts, 1))
}

/// The GPU backends make the CPU's digits (one per digit: lavapipe is slow) for every bundled
/// model, pixel for pixel within 2 levels of 255 (the text-to-image model on wgpu: exactly), and
/// they are recognised.
#[test]
fn bundled_models_sample_the_same_digits_on_every_backend() {
    for model in bundled::BUNDLED.iter().map(|m| m.name) {
        let (labels, reference) = one_of_each_digit(model, Arc::new(CpuBackend::new()));
        for backend in crate::common::backends().into_iter().filter(|b| !b.name().starts_with("cpu")) {
            let name = format!("{model} on {}", backend.name());
            let allowed = if model == "uvit_t2i" && backend.name().starts_with("wgpu") { 0 } else { 2 };
            let (_, images) = one_of_each_digit(model, backend);
            let worst = images.pixels.iter().zip(&reference.pixels).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            println!("{name}: largest pixel difference from the CPU {worst}");
            assert!(worst <= allowed, "{name}: pixels differ from the CPU's by up to {worst} (at most {allowed} allowed)");
            assert_recognised(&labels, &images, &name);
        }
    }
}
