//! The bundled digits model makes the digits it is asked for: 10 samples of each digit with
//! the model's own recipe, classified by the bundled logistic-regression classifier
//! (weights-tools/train_digits.py), must be at least 90% right.
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::bundled;
use ditrt::generate::{generate, Run};
use ditrt::image::Images;
use ditrt::models::denoiser::GraphDenoiser;
use ditrt::models::ModelConfig;
use ditrt::recipe::Recipe;
use ditrt::tensor::DType;
use ditrt::weights::{read_all, FileWeights};

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

#[test]
fn bundled_dit_samples_are_the_digits_asked_for() {
    let file = bundled::open("dit").unwrap();
    let config = ModelConfig::from_file(&file).unwrap();
    let sampler = Recipe::of_file(&file, &config).unwrap().sampler_config(&config, false).unwrap();
    let labels: Vec<u32> = (0..10 * PER_DIGIT).map(|i| (i / PER_DIGIT) as u32).collect();
    let run = Run { seed: 2024, first_image: 0, labels: labels.clone(), count: labels.len(), batch: labels.len() };
    let per_launch = run.batch * if sampler.guidance.is_guided() { 2 } else { 1 };
    let backend = Arc::new(CpuBackend::new());
    let mut denoiser = GraphDenoiser::new(backend, &config, &mut FileWeights::new(&file), per_launch, DType::F32).unwrap();
    let images = generate(&mut denoiser, &sampler, &run, None, &mut || {}).unwrap();
    let predicted = classify(&images);
    let mut right = [0usize; 10];
    for (want, got) in labels.iter().zip(&predicted) {
        right[*want as usize] += (*want as usize == *got) as usize;
    }
    let accuracy = right.iter().sum::<usize>() as f64 / labels.len() as f64;
    println!("per digit (of {PER_DIGIT}): {right:?}, accuracy {accuracy:.2} with {sampler:?}");
    assert!(accuracy >= 0.9, "only {:.0}% of samples classified as the digit asked for: {right:?}", 100.0 * accuracy);
}
