//! The `ditrt` command line: inspect, verify, bench.
mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ditrt", version, about = "Inference engine for diffusion transformer backbones")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a weights file's architecture, config, parameter count, multiply-adds and tensors.
    Inspect(cli::inspect::Args),
    /// Run a model on a fixture and compare with the PyTorch reference output.
    Verify(cli::verify::Args),
    /// Time forward passes with random weights.
    Bench(cli::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Verify(a) => cli::verify::run(a),
        Command::Bench(a) => cli::bench::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
