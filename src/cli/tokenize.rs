use std::path::PathBuf;
use std::process::ExitCode;

use ditrt::io::safetensors::SafetensorsFile;
use ditrt::text::ClipTokenizer;
use ditrt::Result;

#[derive(clap::Args)]
pub struct Args {
    /// A text-encoder file holding the tokenizer vocabulary (tensor tokenizer.bpe_merges).
    #[arg(long)]
    text_encoder: PathBuf,
    /// The prompts; put `--` before one that starts with '-'.
    #[arg(required = true)]
    prompts: Vec<String>,
}

/// One JSON array of 77 ids per prompt on stdout; a note on stderr for each truncated prompt.
pub fn run(args: Args) -> Result<ExitCode> {
    let tokenizer = ClipTokenizer::from_file(&SafetensorsFile::open(&args.text_encoder)?)?;
    for prompt in &args.prompts {
        let encoded = tokenizer.encode(prompt);
        if let Some(note) = encoded.truncation_note(prompt) {
            eprintln!("{note}");
        }
        println!("{}", serde_json::to_string(&encoded.ids[..]).expect("ids serialize"));
    }
    Ok(ExitCode::SUCCESS)
}
