use std::path::PathBuf;
use std::process::ExitCode;

use ditrt::io::sink::Output;
use ditrt::tools::merge::merge;
use ditrt::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Shards written by `ditrt sample --shard`: .npz files or folders (DIR/), in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged output: an .npz or a folder (DIR/), as one run would have written it.
    #[arg(short, long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let out = Output::parse(&args.out)?;
    let report = merge(&args.shards, &out)?;
    println!("wrote {} ({} images from {} shards, {}x{})", args.out.display(), report.images, report.shards, report.height, report.width);
    Ok(ExitCode::SUCCESS)
}
