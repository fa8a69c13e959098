use std::path::PathBuf;
use std::process::ExitCode;

use ditrt::backend;
use ditrt::tensor::DType;
use ditrt::tools::verify::{default_tolerance, verify_fixture};
use ditrt::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Model weights (ditrt safetensors with its config in the metadata).
    #[arg(long)]
    weights: PathBuf,
    /// Fixture with inputs x, t, y and the reference output out.
    #[arg(long)]
    fixture: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Largest rel_l2 that passes, a finite number >= 0 (default by dtype: f32 1e-5, f16 1e-2,
    /// bf16 4e-2).
    #[arg(long, value_parser = parse_tolerance, allow_hyphen_values = true)]
    tol: Option<f64>,
}

fn parse_tolerance(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(tol) if tol.is_finite() && tol >= 0.0 => Ok(tol),
        _ => Err(format!("'{text}' is not a tolerance: expected a finite number >= 0")),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let dtype = DType::parse(&args.dtype)?;
    let backend = backend::select(&args.backend)?;
    println!("backend: {}", backend.name());
    let tol = args.tol.unwrap_or_else(|| default_tolerance(dtype));
    let cmp = verify_fixture(backend, &args.weights, &args.fixture, dtype)?;
    let verdict = if cmp.passes(tol) { "pass" } else { "FAIL" };
    println!("{verdict}: dtype {dtype}, tolerance {tol:e}{}", if cmp.non_finite { ", output has NaN/Inf" } else { "" });
    println!("rel_l2={:.3e} max_abs={:.3e}", cmp.rel_l2, cmp.max_abs);
    Ok(if cmp.passes(tol) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
