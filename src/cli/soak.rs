use std::process::ExitCode;

use ditrt::pipeline::bundled;
use ditrt::pipeline::generate::{Classes, RecipeOverrides, Run, SamplingModel};
use ditrt::tensor::DType;
use ditrt::tools::soak::soak;
use ditrt::{backend, Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Bundled model to sample (`ditrt sample --list`).
    #[arg(long, default_value = "dit")]
    model: String,
    /// Model evaluations in all.
    #[arg(long, default_value_t = 10_000, value_parser = super::positive)]
    steps: usize,
    /// Evaluations before the memory baseline is taken (default: a tenth of --steps).
    #[arg(long)]
    warmup: Option<usize>,
    /// Images per sampling run.
    #[arg(long, default_value_t = 8, value_parser = super::positive)]
    batch: usize,
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Fail (exit 1) when resident memory grows by more than this many MiB after the warm-up.
    #[arg(long, default_value_t = 8.0)]
    max_growth_mib: f64,
    /// Print one JSON object (every sample) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let model = SamplingModel::new(bundled::open(&args.model)?, &RecipeOverrides::default())?;
    let classes = model.config.num_classes().unwrap_or(0) as u32;
    let run = Run {
        seed: 0,
        first_image: 0,
        classes: if classes > 0 { Classes::Cycle((0..classes).collect()) } else { Classes::None },
        count: args.batch as u64,
        noise: None,
    };
    let mut pipeline = model.build(backend::select(&args.backend)?, DType::F32, args.batch, None, None)?;
    let warmup = args.warmup.unwrap_or(args.steps / 10);
    if warmup >= args.steps {
        return Err(Error::invalid(format!("soak: --warmup {warmup} leaves none of the {} steps to measure", args.steps)));
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "soak: {} steps of bundled '{}' at batch {} on {} (warm-up {warmup} steps)",
        args.steps,
        args.model,
        args.batch,
        pipeline.backend_name()
    );
    let every = (args.steps / 20).max(1);
    let mut next = 0;
    let report = soak(&mut pipeline, &run, args.steps, warmup, &mut |done, rss| {
        if !args.json && done >= next {
            eprintln!("step {done:>6}: resident {:.1} MiB", mib(rss));
            next = done + every;
        }
    })?;
    let flat = mib(report.growth_bytes) <= args.max_growth_mib;
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serialises"));
    } else {
        println!(
            "soak: {} steps, resident {:.1} MiB after {} warm-up steps, at most {:.1} MiB after: growth {:.2} MiB ({})",
            report.steps,
            mib(report.rss_after_warmup),
            report.warmup_steps,
            mib(report.rss_max_after_warmup),
            mib(report.growth_bytes),
            if flat { "flat" } else { "GROWING" }
        );
    }
    Ok(if flat { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
