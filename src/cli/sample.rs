use std::path::PathBuf;
use std::process::ExitCode;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use ditrt::io::atomic::check_writable;
use ditrt::io::image::{read_run_key, render_grid, write_npz, write_png};
use ditrt::io::safetensors::SafetensorsFile;
use ditrt::pipeline::bundled;
use ditrt::pipeline::generate::{RecipeOverrides, Run, SamplingModel};
use ditrt::sampling::recipe::SamplerName;
use ditrt::sampling::Method;
use ditrt::tensor::DType;
use ditrt::tools::weight_check::check_finite;
use ditrt::{backend, Error, Result};

use super::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    /// Model weights (ditrt safetensors); default: the bundled model named by --model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Bundled model to use when --weights is not given (`--list` names them).
    #[arg(long, default_value = "dit", value_parser = PossibleValuesParser::new(bundled::BUNDLED.iter().map(|m| m.name)))]
    model: String,
    /// List the models built into the binary (backbone, size, default sampler) and exit.
    #[arg(long)]
    list: bool,
    /// Classes: a comma list (images cycle through it), `all`, or `random`.
    #[arg(long, default_value = "all")]
    class: String,
    /// Number of images (default: 4 per listed class, at most 64).
    #[arg(long)]
    num: Option<usize>,
    /// Images per sampler call (the model runs on twice as many when guided).
    #[arg(long, default_value_t = 32, value_parser = super::positive)]
    batch: usize,
    /// Sampler steps (default: the model's recipe).
    #[arg(long)]
    steps: Option<usize>,
    /// Sampler (default: the model's recipe).
    #[arg(long, value_parser = PossibleValuesParser::new(["ddpm", "ddim", "dpm-solver"]).try_map(|s| s.parse::<SamplerName>()))]
    sampler: Option<SamplerName>,
    /// DDIM eta (only DDIM uses it).
    #[arg(long)]
    eta: Option<f64>,
    /// Guidance scale for every backbone in diffusers' and DiT's convention, u + s(c − u):
    /// 1 = off. U-ViT's own scale s' (c + s'(c − u)) is s − 1; the header shows both.
    #[arg(long)]
    cfg: Option<f64>,
    /// Guide every latent channel instead of DiT's first 3.
    #[arg(long)]
    cfg_all_channels: bool,
    /// Seed of the noise (and of `--class random`); -1 picks one at random and prints it.
    #[arg(long, default_value = "0", value_parser = super::seed, allow_hyphen_values = true)]
    seed: super::Seed,
    #[arg(long, default_value = "auto", value_parser = PossibleValuesParser::new(backend::BACKEND_NAMES))]
    backend: String,
    #[arg(long, default_value = "f32", value_parser = PossibleValuesParser::new(super::DTYPES))]
    dtype: String,
    /// CPU threads (default: all cores).
    #[arg(long, value_parser = super::positive)]
    threads: Option<usize>,
    /// Output: .png (labelled grid) or .npz (uint8 N×H×W×3 under arr_0).
    #[arg(short = 'o', long, default_value = "samples.png")]
    out: PathBuf,
    /// VAE decoder for latent models (ditrt safetensors, `convert.py --arch vae`): samples are
    /// divided by 0.18215 and decoded to images.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Read every weight first and refuse NaN or Inf values, naming the tensor.
    #[arg(long)]
    check_weights: bool,
    /// Make only shard i of n (`i/n`, 0-based) of the run's images.
    #[arg(long)]
    shard: Option<String>,
}

/// Class of every image of the run.
fn run_labels(spec: &str, num_classes: usize, count: usize, seed: u64) -> Result<Vec<u32>> {
    match spec {
        "all" => Ok((0..count).map(|i| (i % num_classes) as u32).collect()),
        "random" => {
            // A stream of its own, so labels never share draws with the noise streams.
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_6265_6c73);
            Ok((0..count).map(|_| rng.random_range(0..num_classes as u32)).collect())
        }
        list => {
            let classes = list
                .split(',')
                .map(|c| {
                    let id: u32 = c.trim().parse().map_err(|_| Error::invalid(format!("--class: '{c}' is not a class id")))?;
                    if id as usize >= num_classes {
                        return Err(Error::invalid(format!("class id {id} out of range: the model has classes 0..{}", num_classes - 1)));
                    }
                    Ok(id)
                })
                .collect::<Result<Vec<u32>>>()?;
            Ok((0..count).map(|i| classes[i % classes.len()]).collect())
        }
    }
}

/// Classes listed in `spec` (for the default image count and the grid's columns).
fn listed_classes(spec: &str, num_classes: usize) -> usize {
    match spec {
        "all" => num_classes,
        "random" => 8,
        list => list.split(',').count(),
    }
}

/// [start, end) of shard `spec` ("i/n") among `count` images.
fn shard_range(spec: Option<&str>, count: usize) -> Result<(usize, usize)> {
    let Some(spec) = spec else {
        return Ok((0, count));
    };
    let bad = || Error::invalid(format!("--shard '{spec}': expected i/n with 0 <= i < n"));
    let (i, n) = spec.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if i >= n {
        return Err(bad());
    }
    // count * (i + 1) overflows usize for large runs; u128 holds any product of two usizes.
    let bound = |k: usize| (count as u128 * k as u128 / n as u128) as usize;
    Ok((bound(i), bound(i + 1)))
}

enum Output {
    Png,
    Npz,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.list {
        for model in bundled::BUNDLED {
            println!("{}", model.summary()?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    super::set_threads(args.threads)?;
    let seed = args.seed.0.unwrap_or_else(rand::random);
    let output = match args.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Output::Png,
        Some("npz") => Output::Npz,
        _ => return Err(Error::invalid(format!("--out {}: expected a .png or .npz file", args.out.display()))),
    };
    check_writable(&args.out)?;
    let file = match &args.weights {
        Some(path) => SafetensorsFile::open(path)?,
        None => bundled::open(&args.model)?,
    };
    let dtype = DType::parse(&args.dtype)?;
    if args.check_weights {
        check_finite(&file, Some(dtype))?;
    }
    if args.weights.is_some() && args.model != "dit" {
        eprintln!("warning: --model {} is ignored: --weights gives the model", args.model);
    }
    let overrides =
        RecipeOverrides { sampler: args.sampler, steps: args.steps, cfg_scale: args.cfg, eta: args.eta, all_channels: args.cfg_all_channels };
    let model = SamplingModel::new(file, &overrides)?;
    let (config, sampler) = (&model.config, &model.sampler);
    if args.eta.is_some() && !matches!(sampler.method, Method::Ddim { .. }) {
        eprintln!("warning: --eta is ignored: only DDIM uses it, this run samples with {}", sampler.method);
    }

    let classes = config.num_classes();
    let listed = classes.map(|k| listed_classes(&args.class, k)).unwrap_or(1);
    let num = args.num.unwrap_or((4 * listed).min(64));
    let labels = match classes {
        Some(k) => run_labels(&args.class, k, num, seed)?,
        None if args.class == "all" => Vec::new(),
        None => return Err(Error::invalid("--class given for an unconditional model")),
    };
    let (start, end) = shard_range(args.shard.as_deref(), num)?;
    let run =
        Run { seed, first_image: start as u64, labels: if labels.is_empty() { labels } else { labels[start..end].to_vec() }, count: end - start };
    let batch = args.batch.min(end - start).max(1);

    // What makes this output: a finished file carrying the same key is this very shard.
    let run_key = serde_json::json!({
        "weights": match &args.weights {
            Some(path) => format!("{} ({} bytes)", path.display(), std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)),
            None => format!("bundled {} (ditrt {})", args.model, env!("CARGO_PKG_VERSION")),
        },
        "sampler": format!("{sampler:?}"),
        "dtype": dtype.to_string(),
        "seed": seed,
        "class": args.class,
        "num": num,
        "shard": args.shard,
        "vae": args.vae.as_ref().map(|p| p.display().to_string()),
    })
    .to_string();
    if let Some(shard) = &args.shard {
        match read_run_key(&args.out) {
            Some(key) if key == run_key => {
                println!("kept {}: shard {shard} of this run is already complete ({} images)", args.out.display(), end - start);
                return Ok(ExitCode::SUCCESS);
            }
            Some(_) => eprintln!("{} holds another run's images: it will be replaced", args.out.display()),
            None => {}
        }
    }

    let vae = args.vae.as_ref().map(SafetensorsFile::open).transpose()?;
    if let (Some(vae), true) = (&vae, args.check_weights) {
        check_finite(vae, Some(dtype))?;
    }
    let mut pipeline = model.build(backend::select(&args.backend)?, dtype, batch, vae.as_ref())?;
    let (config, sampler) = (&pipeline.model().config, &pipeline.model().sampler);
    eprintln!(
        "sampling {} image(s) [{start}, {end}) of {num} from {} ({}) on {}, {dtype}\n  {sampler}, seed {}{}",
        run.count,
        pipeline.model().file.path().display(),
        config.describe(),
        pipeline.backend_name(),
        seed,
        if args.seed.0.is_none() { " (random: pass --seed to repeat)" } else { "" }
    );
    let mut progress = Progress::new();
    let images = pipeline.generate(&run, &mut |p| progress.update(p))?;
    progress.finish();

    match output {
        Output::Png => {
            let names: Vec<String> = run.labels.iter().map(|y| y.to_string()).collect();
            let cols = if args.class == "random" || listed > 16 { 8 } else { listed };
            let (w, h, rgb) = render_grid(&images, &names, cols);
            write_png(&args.out, w, h, &rgb, &run_key)?;
        }
        Output::Npz => write_npz(&args.out, &images, &run_key)?,
    }
    println!("wrote {} ({} images, {}x{})", args.out.display(), images.count, images.height, images.width);
    Ok(ExitCode::SUCCESS)
}
