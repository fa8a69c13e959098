//! The CLIP tokenizer (src/text) against transformers' slow CLIPTokenizer + ftfy on the prompts of
//! tests/fixtures/clip_tokenizer.json (weights-tools/make_tokenizer_fixture.py), its errors, and
//! `ditrt tokenize`.
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use ditrt::io::safetensors::SafetensorsFile;
use ditrt::text::{ClipTokenizer, BOS, CONTEXT_LEN, EOS, MERGES_KEY};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, TensorView};

use crate::{common, ditrt, fixture};

/// CLIP's merges, as a text-encoder file stores them (tests/fixtures/clip_bpe_merges.txt.gz).
fn merges() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let gz = std::fs::read(fixture("clip_bpe_merges.txt.gz")).expect("tests/fixtures/clip_bpe_merges.txt.gz");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).expect("gzip of UTF-8 text");
        text
    })
}

fn tokenizer() -> &'static ClipTokenizer {
    static TOKENIZER: OnceLock<ClipTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| ClipTokenizer::from_merges(merges()).expect("CLIP's merges load"))
}

/// A safetensors file holding one tensor of raw bytes.
fn write_tensor(path: &Path, key: &str, dtype: Dtype, shape: Vec<usize>, bytes: &[u8]) {
    let view = TensorView::new(dtype, shape, bytes).expect("shape matches the bytes");
    safetensors::serialize_to_file([(key, view)], None, path).expect("write safetensors");
}

/// A text-encoder file as far as the tokenizer reads it: the merges under `tokenizer.bpe_merges`.
fn write_vocabulary(path: &Path, text: &str) {
    write_tensor(path, MERGES_KEY, Dtype::U8, vec![text.len()], text.as_bytes());
}

#[test]
fn tokenizer_matches_the_reference_on_every_fixture_prompt() {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("clip_tokenizer.json")).unwrap()).unwrap();
    let cases = json["cases"].as_array().expect("cases");
    assert!(cases.len() >= 200, "{} prompts", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let tokens = case["tokens"].as_u64().unwrap() as usize;
        let got = tokenizer().encode(prompt);
        if got.ids[..] != want[..] || got.tokens != tokens || got.truncated != (tokens > CONTEXT_LEN - 2) {
            wrong.push(format!("{prompt:?}: {} tokens {:?}, reference {tokens} {want:?}", got.tokens, got.ids));
        }
    }
    assert!(wrong.is_empty(), "{} of {} prompts differ from {}:\n{}", wrong.len(), cases.len(), json["reference"], wrong.join("\n"));
}

#[test]
fn tokenizer_truncates_past_75_tokens_with_a_note() {
    let long = "a red double decker bus driving down a city street, ".repeat(8);
    let e = tokenizer().encode(&long);
    assert!(e.truncated && e.tokens == 8 * 11, "{} tokens, truncated {}", e.tokens, e.truncated);
    assert_eq!((e.ids[0], e.ids[CONTEXT_LEN - 1]), (BOS, EOS));
    assert!(e.ids[1..CONTEXT_LEN - 1].iter().all(|&id| id != EOS), "75 prompt tokens kept: {:?}", e.ids);
    let note = e.truncation_note(&long).expect("a note");
    assert!(note.contains("88 tokens") && note.contains("first 75") && !note.contains('\n'), "{note}");

    let exact = "a ".repeat(75);
    let e = tokenizer().encode(&exact);
    assert!(!e.truncated && e.tokens == 75 && e.truncation_note(&exact).is_none());
    assert_eq!(e.ids[CONTEXT_LEN - 1], EOS);
    assert!(tokenizer().encode(&"a ".repeat(76)).truncated);
}

/// Any string encodes without a panic to BOS, the tokens, EOS and padding.
#[test]
fn tokenizer_never_panics_on_random_unicode() {
    let pieces = ["&amp;", "&#x", "&#", ";", "<", "<|endoftext|>", "<|startoftext|>", "'s", "\r\n", "\x1b[", "\u{345}", "\u{301}", "ﾟ", "Σ", "İ", "ﬃ"];
    let ranges = [
        (0x0, 0x80),
        (0x80, 0x250),
        (0x300, 0x370),
        (0x370, 0x530),
        (0x2000, 0x2070),
        (0x3000, 0x3100),
        (0x4e00, 0x9fff),
        (0xff00, 0xfff0),
        (0x1f300, 0x1faff),
        (0x0, 0x11_0000),
    ];
    let mut rng = StdRng::seed_from_u64(common::seed());
    for _ in 0..3000 {
        let mut prompt = String::new();
        for _ in 0..rng.random_range(0..60) {
            if rng.random_bool(0.2) {
                prompt.push_str(pieces[rng.random_range(0..pieces.len())]);
            } else {
                let (lo, hi) = ranges[rng.random_range(0..ranges.len())];
                prompt.extend(char::from_u32(rng.random_range(lo..hi)));
            }
        }
        let e = tokenizer().encode(&prompt);
        let kept = e.tokens.min(CONTEXT_LEN - 2);
        assert_eq!(e.ids[0], BOS, "{prompt:?}");
        assert!(e.ids[kept + 1..].iter().all(|&id| id == EOS), "{prompt:?}: {:?}", e.ids);
        assert!(e.ids.iter().all(|&id| id <= EOS), "{prompt:?}: {:?}", e.ids);
    }
    // Long input stays fast: BPE is O(n log n) per piece, cleaning linear.
    let start = std::time::Instant::now();
    let e = tokenizer().encode(&format!("{} {}", "x".repeat(200_000), "猫😀 ".repeat(20_000)));
    assert!(e.truncated && start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

#[test]
fn tokenizer_refuses_a_malformed_vocabulary_in_one_line() {
    let all: Vec<&str> = merges().lines().collect();
    let cases = [
        (all[..100].join("\n"), "100 merges, CLIP's vocabulary needs 48894"),
        (format!("#version: 0.2\n{}", merges()), "line 1 ('#version: 0.2'): '#version:' is neither a byte symbol"),
        (format!("i n\nabc\n{}", all[1..].join("\n")), "line 2 is not a merge of two symbols: 'abc'"),
        (format!("{}\n{}", all[0], merges()), "line 2 ('i n'): makes 'in', a symbol already"),
    ];
    for (text, want) in cases {
        let err = ClipTokenizer::from_merges(&text).err().expect("refused").to_string();
        assert!(err.starts_with("tokenizer vocabulary: ") && err.contains(want) && !err.contains('\n'), "{err}");
    }
}

#[test]
fn tokenizer_file_errors_name_the_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("clip.safetensors");
    write_tensor(&none, "text_model.final_layer_norm.weight", Dtype::F32, vec![2], &[0; 8]);
    let err = ClipTokenizer::from_file(&SafetensorsFile::open(&none).unwrap()).err().expect("refused").to_string();
    let want = "has no tokenizer vocabulary (tensor tokenizer.bpe_merges); convert the text encoder with weights-tools/convert.py --arch clip_text";
    assert!(err.starts_with(none.to_str().unwrap()) && err.contains(want), "{err}");

    let short = dir.path().join("short.safetensors");
    write_vocabulary(&short, "i n\nt h\n");
    let err = ClipTokenizer::from_file(&SafetensorsFile::open(&short).unwrap()).err().expect("refused").to_string();
    assert!(err.contains("short.safetensors: tensor 'tokenizer.bpe_merges': 2 merges, CLIP's vocabulary needs 48894"), "{err}");

    let floats = dir.path().join("floats.safetensors");
    write_tensor(&floats, MERGES_KEY, Dtype::F32, vec![1], &[0; 4]);
    let err = ClipTokenizer::from_file(&SafetensorsFile::open(&floats).unwrap()).err().expect("refused").to_string();
    assert!(err.contains("tensor 'tokenizer.bpe_merges': dtype F32, expected U8"), "{err}");

    let binary = dir.path().join("binary.safetensors");
    write_tensor(&binary, MERGES_KEY, Dtype::U8, vec![2], &[0xff, 0xfe]);
    let err = ClipTokenizer::from_file(&SafetensorsFile::open(&binary).unwrap()).err().expect("refused").to_string();
    assert!(err.contains("tensor 'tokenizer.bpe_merges': not UTF-8 text"), "{err}");

    let (code, stdout, stderr) = ditrt(&["tokenize", "--text-encoder", none.to_str().unwrap(), "a cat"]);
    assert_eq!((code, stdout.as_str(), stderr.lines().count()), (2, "", 1), "{stderr}");
    assert!(stderr.contains(want), "{stderr}");
}

#[test]
fn tokenize_cli_prints_one_json_array_per_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.safetensors");
    write_vocabulary(&file, merges());
    let long = "two giraffes standing next to each other in a field. ".repeat(10);
    let prompts = ["a red bus on a city street", "-a prompt that starts with a dash", "", &long];
    let mut args = vec!["tokenize", "--text-encoder", file.to_str().unwrap(), "--"];
    args.extend(prompts);
    let (code, stdout, stderr) = ditrt(&args);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), prompts.len(), "{stdout}");
    for (line, prompt) in lines.iter().zip(prompts) {
        let ids: Vec<u32> = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(ids[..], tokenizer().encode(prompt).ids[..], "{prompt:?}");
    }
    assert_eq!(stderr.lines().count(), 1, "one truncation note: {stderr}");
    assert!(stderr.starts_with("note: prompt \"two giraffes") && stderr.contains("first 75"), "{stderr}");
}
