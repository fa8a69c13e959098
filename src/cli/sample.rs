use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use ditrt::io::latents::LatentsWriter;
use ditrt::io::safetensors::SafetensorsFile;
use ditrt::io::sink::{Output, RunKey, SinkSpec};
use ditrt::pipeline::bundled;
use ditrt::pipeline::generate::{Classes, RecipeOverrides, Run, SamplingModel};
use ditrt::pipeline::noise_file::InitialNoise;
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
    /// Classes: a comma list (images cycle through it), `all` (the default), or `random`.
    #[arg(long)]
    class: Option<String>,
    /// A text-conditioned model's prompt (repeat for several).
    #[arg(long)]
    prompt: Vec<String>,
    /// A file of prompts, one per line (blank lines skipped), after any --prompt.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// A text-conditioned model's text encoder (ditrt safetensors with its vocabulary,
    /// `convert.py --arch clip_text`); a bundled text model brings its own.
    #[arg(long)]
    text_encoder: Option<PathBuf>,
    /// Initial noise x_T from a file (tensor `noise`, [images, C, H, W] of the model's input)
    /// instead of the seeded noise, to reproduce a PyTorch run.
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Number of images (default: 4 per listed class, at most 64); with prompts, images per
    /// prompt (default 4).
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
    /// int64 classes (or prompt indices) under labels), DIR/ (one PNG per image, named by index
    /// and class), or .safetensors (the samples before decoding, f32 `latents` [N, C, H, W]:
    /// a latent model needs no --vae).
    #[arg(short = 'o', long, default_value = "samples.png")]
    out: PathBuf,
    /// VAE decoder for latent models (ditrt safetensors, `convert.py --arch vae`): samples are
    /// divided by the model's latent scale (0.18215; U-ViT's MS-COCO models 0.23010) and
    /// decoded to images.
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

/// The prompts of --prompt then --prompt-file (one per line, blank lines skipped).
fn read_prompts(given: &[String], file: Option<&std::path::Path>) -> Result<Vec<String>> {
    let mut prompts = given.to_vec();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File { path: path.to_path_buf(), msg: format!("cannot read prompts: {e}") })?;
        prompts.extend(text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).map(str::to_string));
        if prompts.len() == given.len() {
            return Err(Error::File { path: path.to_path_buf(), msg: "holds no prompt (one per line)".into() });
        }
    }
    Ok(prompts)
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

    let geometry = config.input_geometry()?;
    let prompts = read_prompts(&args.prompt, args.prompt_file.as_deref())?;
    let text_model = config.io().context.is_some();
    let (classes, listed) = match (text_model, config.num_classes()) {
        (true, _) if args.class.is_some() => return Err(Error::invalid("--class given for a text-conditioned model: give --prompt")),
        (true, _) if prompts.is_empty() => return Err(Error::invalid("a text-conditioned model needs --prompt TEXT or --prompt-file F")),
        (true, _) => (Classes::Prompts { per_prompt: args.num.unwrap_or(4).max(1), prompts: prompts.len() as u32 }, prompts.len()),
        (false, _) if !prompts.is_empty() => {
            return Err(Error::invalid("--prompt given for a model that takes no text (class-conditional or unconditional): give --class"))
        }
        (false, Some(k)) => {
            let spec = args.class.as_deref().unwrap_or("all");
            (run_classes(spec, k, seed)?, listed_classes(spec, k))
        }
        (false, None) if args.class.is_some() => return Err(Error::invalid("--class given for an unconditional model")),
        (false, None) => (Classes::None, 1),
    };
    let num = match &classes {
        Classes::Prompts { per_prompt, prompts } => per_prompt.saturating_mul(*prompts as u64),
        _ => args.num.unwrap_or((4 * listed).min(64) as u64),
    };
    let shard = shard_of(args.shard.as_deref(), args.shards, &|name| std::env::var(name).ok())?;
    let (start, end) = shard_range(shard, num);
    output.check(end - start)?;
    let latents_out = matches!(output, Output::Latents(_));
    if !latents_out && args.vae.is_none() && model.needs_decoder() {
        return Err(Error::invalid(format!(
            "{} samples {}-channel latents: give --vae with the SD KL-f8 decoder (weights-tools/convert.py --arch vae), or write the latents (--out F.safetensors)",
            model.file.path().display(),
            geometry.channels
        )));
    }
    let noise = args.noise.as_ref().map(|path| InitialNoise::open(&SafetensorsFile::open(path)?, geometry, num)).transpose()?;
    let run = Run { seed, first_image: start, classes, count: end - start, noise: noise.clone() };
    let batch = args.batch.min(usize::try_from(run.count).unwrap_or(usize::MAX)).max(1);

    let text_encoder = match (&args.text_encoder, &args.weights) {
        (Some(path), _) => Some(SafetensorsFile::open(path)?),
        (None, None) if text_model => Some(bundled::open_text_encoder(&args.model)?),
        (None, _) => None,
    };
    let vae = if latents_out { None } else { args.vae.as_ref().map(SafetensorsFile::open).transpose()? };
    if latents_out && args.vae.is_some() {
        eprintln!("warning: --vae is ignored: --out {} keeps the latents", args.out.display());
    }
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
            "prompts": prompts,
            "per_prompt": args.num.filter(|_| text_model),
            "text_encoder": text_encoder.as_ref().map(|t| format!("{} ({})", t.path().display(), t.content_id())),
            "noise": noise.as_ref().map(|n| n.content_id.clone()),
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

    let mut pipeline = model.build(backend::select(&args.backend)?, dtype, batch, vae.as_ref(), text_encoder.as_ref())?;
    if text_model {
        for cut in pipeline.set_prompts(&prompts)? {
            eprintln!("note: prompt {} has {} tokens: the text encoder keeps the first 75", cut.prompt + 1, cut.tokens);
        }
    }
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
    let labelled = !matches!(run.classes, Classes::None);
    let written = if let Output::Latents(path) = &output {
        let latent = geometry;
        let mut writer = LatentsWriter::new(path, key.encode(), latent, labelled);
        pipeline.sample_into(&run, &mut |p| progress.update(p), &mut |x, labels| writer.append(x, labels))?;
        writer.finish()?;
        format!("latents {}x{}x{}", latent.channels, latent.height, latent.width)
    } else {
        let image = pipeline.image_geometry()?;
        let columns = match &run.classes {
            Classes::Prompts { per_prompt, .. } => (*per_prompt).clamp(1, 8) as usize,
            _ if args.class.as_deref() == Some("random") || listed > 16 => 8,
            _ => listed,
        };
        let label_names = text_model.then(|| prompts.clone());
        let spec = SinkSpec { key, height: image.height, width: image.width, channels: 3, labelled, columns, label_names };
        output.check_space(&spec)?;
        let mut sink = output.open(&spec)?;
        pipeline.generate_into(&run, &mut |p| progress.update(p), &mut |images, labels| sink.append(images, labels))?;
        sink.finish()?;
        format!("{}x{}", image.height, image.width)
    };
    progress.finish();
    println!("wrote {} ({} images, {written})", args.out.display(), run.count);
    Ok(ExitCode::SUCCESS)
}
