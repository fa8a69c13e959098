use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use ditrt::error::one_line;
use ditrt::io::safetensors::SafetensorsFile;
use ditrt::models::backbone::ModelInput;
use ditrt::models::ModelConfig;
use ditrt::sampling::recipe::Recipe;
use ditrt::tools::weight_check::check_finite;
use ditrt::Result;

use super::human;

#[derive(clap::Args)]
pub struct Args {
    /// A ditrt safetensors file (see weights-tools/convert.py).
    weights: PathBuf,
    /// Also read every tensor and fail on a NaN or Inf value, naming the tensor.
    #[arg(long)]
    check_weights: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let file = SafetensorsFile::open(&args.weights)?;
    let config = ModelConfig::from_file(&file)?;
    if args.check_weights {
        check_finite(&file, None)?;
    }
    let keys = file.keys();
    let infos: Vec<(String, String, Vec<usize>)> = keys
        .iter()
        .map(|k| {
            let (dtype, shape) = file.info(k).expect("listed key has info");
            (k.clone(), dtype, shape)
        })
        .collect();
    let is_data = |key: &str| config.data_keys().contains(&key);
    let params: usize = infos.iter().filter(|(k, ..)| !is_data(k)).map(|(_, _, s)| s.iter().product::<usize>()).sum();
    let (per, input) = match config.io().input {
        ModelInput::Image(g) => ("image", format!("input {}x{}x{}", g.channels, g.height, g.width)),
        ModelInput::Tokens { len, .. } => ("prompt", format!("{len} tokens")),
    };
    let macs = config.macs_per_image();

    println!("file: {}", args.weights.display());
    println!("architecture: {}", config.arch());
    println!("model: {}", config.describe());
    println!("config: {}", config.to_json());
    println!("parameters: {params} ({})", human(params as f64));
    println!("multiply-adds per forward: {} per {per} ({:.0} MACs) at {input}", human(macs), macs);

    // Check the file against what the config expects, by official key.
    let expected: HashMap<String, Vec<usize>> = config.param_shapes().into_iter().collect();
    let mut problems = Vec::new();
    for (key, shape) in &expected {
        match infos.iter().find(|(k, _, _)| k == key) {
            None => problems.push(format!("missing key {key} (expected shape {shape:?})")),
            Some((_, _, found)) if found != shape => problems.push(format!("{key}: expected shape {shape:?}, found {found:?}")),
            _ => {}
        }
    }
    for (key, dtype, _) in infos.iter().filter(|(k, ..)| !is_data(k)) {
        if !expected.contains_key(key) {
            problems.push(format!("unexpected key {}", one_line(key)));
        } else if !["F32", "F16", "BF16"].contains(&dtype.as_str()) {
            problems.push(format!("{}: dtype {dtype} is not a floating type (F32, F16, BF16)", one_line(key)));
        }
    }
    // The sampling recipe `sample` would use, checked as `sample` checks it.
    if let Ok(backbone) = config.sampling() {
        if let Err(e) = Recipe::of_file(&file, &backbone).and_then(|r| r.sampler_config(&backbone, false)) {
            problems.push(format!("sampling recipe: {e}"));
        }
    }
    println!();
    let width = infos.iter().map(|(k, _, _)| k.len()).max().unwrap_or(3).max(3);
    println!("{:<width$}  {:<6}  shape", "key", "dtype");
    for (key, dtype, shape) in &infos {
        println!("{:<width$}  {dtype:<6}  {shape:?}", one_line(key));
    }
    println!();
    if problems.is_empty() {
        println!("check: all {} tensors match the {} config", infos.len(), config.arch());
        Ok(ExitCode::SUCCESS)
    } else {
        problems.sort();
        for p in &problems {
            println!("check: {p}");
        }
        Ok(ExitCode::from(1))
    }
}
