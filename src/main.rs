//! The `ditrt` command line: sample, merge, inspect, verify, bench, soak, tokenize.
mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ditrt", version, about = "Inference engine for diffusion transformer backbones", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sample images (from the bundled digits model by default) to a PNG grid, an .npz, a
    /// folder of PNGs, or the latents to a safetensors file.
    Sample(Box<cli::sample::Args>),
    /// Merge the shards of one run (.npz files or folders) into one .npz or folder, checked.
    Merge(cli::merge::Args),
    /// Print a weights file's architecture, config, parameter count, multiply-adds and tensors.
    Inspect(cli::inspect::Args),
    /// Run a model on a fixture and compare with the PyTorch reference output.
    Verify(cli::verify::Args),
    /// Time forward passes with random weights.
    Bench(cli::bench::Args),
    /// Sample a bundled model for many steps and check that resident memory stays flat.
    Soak(cli::soak::Args),
    /// Print each prompt's 77 CLIP token ids as a JSON array, one line per prompt.
    Tokenize(cli::tokenize::Args),
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away (`inspect W | head`)
    // instead of panicking on the broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sample(a) => cli::sample::run(*a),
        Command::Merge(a) => cli::merge::run(a),
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Verify(a) => cli::verify::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Soak(a) => cli::soak::run(a),
        Command::Tokenize(a) => cli::tokenize::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
