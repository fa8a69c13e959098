use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use ditrt::io::safetensors::SafetensorsFile;
use ditrt::io::sink::{Output, RunKey, SinkSpec};
use ditrt::pipeline::bundled;
use ditrt::pipeline::generate::{Classes, RecipeOverrides, Run, SamplingModel};
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
    num: Option<u64>,
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
    /// Output: .png (labelled grid, at most 1024 images), .npz (uint8 N×H×W×3 under arr_0,
    /// int64 classes under labels) or DIR/ (one PNG per image, named by index and class).
    #[arg(short = 'o', long, default_value = "samples.png")]
    out: PathBuf,
    /// VAE decoder for latent models (ditrt safetensors, `convert.py --arch vae`): samples are
    /// divided by 0.18215 and decoded to images.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Read every weight first and refuse NaN or Inf values, naming the tensor.
    #[arg(long)]
    check_weights: bool,
    /// Make only shard i of n (`i/n`, 0-based) of the run's images; `auto`: i and n from a
    /// Slurm array job (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)
    /// or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of --shards).
    #[arg(long)]
    shard: Option<String>,
    /// Number of shards for `--shard auto` (required in a Kubernetes Indexed Job: its
    /// completions).
    #[arg(long)]
    shards: Option<u64>,
}

/// The classes of the run's images: `all`, `random` or a comma list.
fn run_classes(spec: &str, num_classes: usize, seed: u64) -> Result<Classes> {
    match spec {
        "all" => Ok(Classes::Cycle((0..num_classes as u32).collect())),
        "random" => Ok(Classes::Random { seed, num_classes: num_classes as u32 }),
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
            Ok(Classes::Cycle(classes))
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

/// (i, n) of `--shard` (`i/n`, or `auto` with `--shards`), reading `auto`'s from `env`.
fn shard_of(spec: Option<&str>, shards: Option<u64>, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<(u64, u64)>> {
    let (i, n) = match (spec, shards) {
        (None, None) => return Ok(None),
        (Some("auto"), _) => {
            let var = |name: &str| -> Result<Option<u64>> {
                env(name).map(|v| v.trim().parse().map_err(|_| Error::invalid(format!("--shard auto: {name}={v} is not a number")))).transpose()
            };
            match (var("SLURM_ARRAY_TASK_ID")?, var("JOB_COMPLETION_INDEX")?) {
                (Some(id), _) => {
                    let (Some(min), Some(count)) = (var("SLURM_ARRAY_TASK_MIN")?, var("SLURM_ARRAY_TASK_COUNT")?) else {
                        return Err(Error::invalid("--shard auto: SLURM_ARRAY_TASK_ID without SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT"));
                    };
                    if shards.is_some_and(|n| n != count) {
                        return Err(Error::invalid(format!("--shards {} differs from the Slurm array's {count} tasks", shards.unwrap_or(0))));
                    }
                    (id.checked_sub(min).unwrap_or(u64::MAX), count)
                }
                (None, Some(index)) => {
                    let n =
                        shards.ok_or_else(|| Error::invalid("--shard auto in a Kubernetes Indexed Job needs --shards N (the Job's completions)"))?;
                    (index, n)
                }
                (None, None) => {
                    return Err(Error::invalid(
                        "--shard auto: not in a Slurm array job (SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)",
                    ))
                }
            }
        }
        (Some(spec), None) => {
            let bad = || Error::invalid(format!("--shard '{spec}': expected i/n with 0 <= i < n, or auto"));
            let (i, n) = spec.split_once('/').ok_or_else(bad)?;
            (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?)
        }
        (_, Some(_)) => return Err(Error::invalid("--shards N goes with --shard auto")),
    };
    if i >= n {
        return Err(Error::invalid(format!("--shard '{}': shard {i} of {n} does not exist (0 <= i < n)", spec.unwrap_or_default())));
    }
    Ok(Some((i, n)))
}

/// [start, end) of shard i of n among `count` images.
fn shard_range(shard: Option<(u64, u64)>, count: u64) -> (u64, u64) {
    let Some((i, n)) = shard else {
        return (0, count);
    };
    // count * (i + 1) overflows u64 for large runs; u128 holds any product of two u64s.
    let bound = |k: u64| (count as u128 * k as u128 / n as u128) as u64;
    (bound(i), bound(i + 1))
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
    let output = Output::parse(&args.out)?;
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

    let classes = match config.num_classes() {
        Some(k) => run_classes(&args.class, k, seed)?,
        None if args.class == "all" => Classes::None,
        None => return Err(Error::invalid("--class given for an unconditional model")),
    };
    let listed = config.num_classes().map(|k| listed_classes(&args.class, k)).unwrap_or(1);
    let num = args.num.unwrap_or((4 * listed).min(64) as u64);
    let shard = shard_of(args.shard.as_deref(), args.shards, &|name| std::env::var(name).ok())?;
    let (start, end) = shard_range(shard, num);
    output.check(end - start)?;
    let run = Run { seed, first_image: start, classes, count: end - start };
    let batch = args.batch.min(usize::try_from(run.count).unwrap_or(usize::MAX)).max(1);

    let vae = args.vae.as_ref().map(SafetensorsFile::open).transpose()?;
    if let (Some(vae), true) = (&vae, args.check_weights) {
        check_finite(vae, Some(dtype))?;
    }
    // What makes this output: a finished output carrying the same key is this very shard.
    let key = RunKey {
        run: serde_json::json!({
            "weights": match &args.weights {
                // By content: a file changed in place (same name, same size) is another run.
                Some(path) => format!("{} ({})", path.display(), model.file.content_id()),
                None => format!("bundled {} (ditrt {})", args.model, env!("CARGO_PKG_VERSION")),
            },
            "sampler": format!("{sampler:?}"),
            "dtype": dtype.to_string(),
            "seed": seed,
            "class": args.class,
            "vae": vae.as_ref().map(|v| format!("{} ({})", v.path().display(), v.content_id())),
        }),
        num,
        first: start,
        end,
    };
    if let Some((i, n)) = shard {
        match output.finished_key(&key) {
            Some(found) if found == key.encode() => {
                println!("kept {}: shard {i}/{n} of this run is already complete ({} images)", args.out.display(), run.count);
                return Ok(ExitCode::SUCCESS);
            }
            Some(_) => eprintln!("{} holds another run's images: it will be replaced", args.out.display()),
            None => {}
        }
    }

    let mut pipeline = model.build(backend::select(&args.backend)?, dtype, batch, vae.as_ref())?;
    let image = pipeline.image_geometry()?;
    let columns = if args.class == "random" || listed > 16 { 8 } else { listed };
    let spec = SinkSpec { key, height: image.height, width: image.width, labelled: !matches!(run.classes, Classes::None), columns };
    output.check_space(&spec)?;
    let mut sink = output.open(&spec)?;
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
    pipeline.generate_into(&run, &mut |p| progress.update(p), &mut |images, labels| sink.append(images, labels))?;
    sink.finish()?;
    progress.finish();
    println!("wrote {} ({} images, {}x{})", args.out.display(), run.count, image.height, image.width);
    Ok(ExitCode::SUCCESS)
}
