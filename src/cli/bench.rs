use std::process::ExitCode;

use ditrt::backend;
use ditrt::models::backbone::ModelInput;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::bench::{time_forward, time_gemm};
use ditrt::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Architecture (dit, uvit, tldm, diffit, diffit_unet, vae, clip_text); default: the one
    /// the preset belongs to.
    #[arg(long)]
    arch: Option<String>,
    /// Config, e.g. DiT-S/2, DiT-XL/2 (256 px), DiT-XL/2-512, U-ViT-H/2-ImageNet256,
    /// TLDM-XL/2, DiffiT-XL/2, DiffiT-CIFAR10, SD-VAE-KL-f8, CLIP-ViT-L/14-text.
    #[arg(long, default_value = "DiT-S/2")]
    preset: String,
    #[arg(long, default_value_t = 1, value_parser = super::positive)]
    batch: usize,
    #[arg(long, default_value = "auto")]
    backend: String,
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Untimed forwards first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed forwards (the median is reported).
    #[arg(long, default_value_t = 10, value_parser = super::positive)]
    iters: usize,
    /// Time one N x N x N matrix product (the backend's GEMM peak) instead of a model.
    #[arg(long, value_name = "N", value_parser = super::positive)]
    gemm: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(n) = args.gemm {
        return run_gemm(&args, n);
    }
    let config = match &args.arch {
        Some(arch) => ModelConfig::preset(arch, &args.preset)?,
        None => ModelConfig::preset_any(&args.preset)?,
    };
    let dtype = DType::parse(&args.dtype)?;
    let backend = backend::select(&args.backend)?;
    if !args.json {
        eprintln!(
            "bench: {} on {}, batch {}, {dtype}: {} warm-up + {} timed forwards",
            args.preset,
            backend.name(),
            args.batch,
            args.warmup,
            args.iters
        );
    }
    let t = time_forward(backend, &config, args.batch, dtype, args.warmup, args.iters)?;
    // A text encoder's samples are prompts.
    let samples = match config.io().input {
        ModelInput::Image(_) => "images",
        ModelInput::Tokens { .. } => "prompts",
    };
    if args.json {
        println!("{}", serde_json::to_string(&t).expect("timing serialises"));
    } else {
        println!(
            "{} batch {} {} on {}: {:.2} ms/forward (min {:.2}), {:.2} {samples}/s, {:.1} GFLOP/s ({:.1} GFLOP/forward), arena {:.1} MiB, peak {:.1} MiB",
            args.preset, t.batch, t.dtype, t.backend, t.ms_per_forward, t.ms_min, t.images_per_s, t.gflop_per_s, t.gflop_per_forward, t.arena_mib, t.peak_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_gemm(args: &Args, n: usize) -> Result<ExitCode> {
    let dtype = DType::parse(&args.dtype)?;
    let backend = backend::select(&args.backend)?;
    let t = time_gemm(backend, n, dtype, args.warmup, args.iters)?;
    if args.json {
        println!("{}", serde_json::to_string(&t).expect("timing serialises"));
    } else {
        println!("gemm {n}^3 {} on {}: {:.2} ms (min {:.2}), {:.1} GFLOP/s", t.dtype, t.backend, t.ms_per_forward, t.ms_min, t.gflop_per_s);
    }
    Ok(ExitCode::SUCCESS)
}
