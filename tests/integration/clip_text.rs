//! CLIP text encoder vs transformers' CLIPTextModel (tests/fixtures/clip_text_*: `input_ids`,
//! `out` = last_hidden_state), its causal mask on every backend, `TextEncoder`'s batching,
//! the tokenizer tensor a converted file carries, and the CLIP-L preset's counts.
use std::collections::BTreeMap;
use std::sync::Arc;

use ditrt::backend::cpu::CpuBackend;
use ditrt::graph::Session;
use ditrt::io::safetensors::{read_all, SafetensorsFile, CONFIG_KEY};
use ditrt::models::clip_text::{ClipTextConfig, TOKENIZER_MERGES_KEY};
use ditrt::models::weight_source::FileWeights;
use ditrt::models::ModelConfig;
use ditrt::pipeline::text_encoder::TextEncoder;
use ditrt::tensor::{DType, HostTensor};
use ditrt::tools::verify::{default_tolerance, Comparison};

use crate::common::backends;
use crate::{check_model_fixtures, fixture};

#[test]
fn clip_text_matches_transformers_f32() {
    check_model_fixtures("clip_text_", DType::F32, 1e-5);
}

#[test]
fn clip_text_matches_transformers_half_precision() {
    for dtype in [DType::F16, DType::BF16] {
        check_model_fixtures("clip_text_", dtype, default_tolerance(dtype));
    }
}

/// The fixture's ids and output, and its model file.
fn small_fixture() -> (SafetensorsFile, Vec<u32>, Vec<f32>) {
    let file = SafetensorsFile::open(fixture("clip_text_small.safetensors")).unwrap();
    let tensors = read_all(fixture("clip_text_small.fixture.safetensors")).unwrap();
    (file, ids_of(&tensors["input_ids"]), tensors["out"].to_f32())
}

fn ids_of(t: &HostTensor) -> Vec<u32> {
    assert_eq!(t.dtype, DType::U32);
    t.bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Position n's output depends on tokens 0..=n only: ids changed from position 40 on leave
/// positions 0..40 bit for bit as they were, on every backend, and change the rest.
#[test]
fn attention_is_causal_on_every_backend() {
    let (file, ids, _) = small_fixture();
    let config = ModelConfig::from_file(&file).unwrap();
    let (batch, len, cut) = (3, 77, 40);
    let width = config.output_channels();
    let mut changed = ids.clone();
    for row in changed.chunks_mut(len) {
        row[cut..].iter_mut().enumerate().for_each(|(i, id)| *id = (i % 90) as u32);
    }
    for backend in backends() {
        let graph = config.build(&mut FileWeights::new(&file), batch, DType::F32).unwrap();
        let session = Session::new(backend.clone(), &graph).unwrap();
        let run = |ids: &[u32]| {
            session.set_input("input_ids", &HostTensor::from_u32([batch, len], ids)).unwrap();
            session.run().unwrap();
            session.output("out").unwrap().to_f32()
        };
        let (before, after) = (run(&ids), run(&changed));
        for b in 0..batch {
            let rows = |v: &[f32], from: usize, to: usize| v[(b * len + from) * width..(b * len + to) * width].to_vec();
            assert_eq!(rows(&before, 0, cut), rows(&after, 0, cut), "{}: sample {b}: a later token changed an earlier output", backend.name());
            assert_ne!(rows(&before, cut, len), rows(&after, cut, len), "{}: sample {b}", backend.name());
        }
    }
}

/// Any number of prompts in launches of the built batch, the last one padded: the same
/// features as the fixture's reference, prompt by prompt.
#[test]
fn the_text_encoder_encodes_any_number_of_prompts() {
    let (file, ids, want) = small_fixture();
    let mut encoder = TextEncoder::new(Arc::new(CpuBackend::new()), &file, DType::F32, 2).unwrap();
    assert_eq!((encoder.width(), encoder.tokens()), (32, 77));
    let per = 77 * 32;
    for n in [1, 2, 3] {
        let got = encoder.encode(&ids[..n * 77]).unwrap();
        assert_eq!(got.len(), n * per);
        let cmp = Comparison::new(&got, &want[..n * per]);
        assert!(cmp.passes(1e-5), "{n} prompts: rel_l2 {:.3e}", cmp.rel_l2);
    }
    assert!(encoder.encode(&[]).unwrap().is_empty());
    let err = encoder.encode(&ids[..76]).unwrap_err().to_string();
    assert!(err.contains("76 token ids") && !err.contains('\n'), "{err}");
    let mut bad = ids[..77].to_vec();
    bad[5] = 96;
    let err = encoder.encode(&bad).unwrap_err().to_string();
    assert!(err.contains("token id 96") && err.contains("vocabulary of 96"), "{err}");
    let dit = SafetensorsFile::open(fixture("dit_p2.safetensors")).unwrap();
    let err = TextEncoder::new(Arc::new(CpuBackend::new()), &dit, DType::F32, 1).err().expect("a DiT is no text encoder").to_string();
    assert!(err.contains("dit_p2.safetensors") && err.contains("clip_text") && err.contains("dit model"), "{err}");
}

/// `file`'s tensors and config, plus a U8 tensor `key` (as convert.py stores the tokenizer),
/// written to `dir/name`.
fn with_u8_tensor(dir: &std::path::Path, name: &str, file: &SafetensorsFile, key: &str) -> std::path::PathBuf {
    use safetensors::tensor::{Dtype, TensorView};
    let tensors: Vec<(String, HostTensor)> = file.keys().into_iter().map(|k| (k.clone(), file.tensor(&k).unwrap())).collect();
    let dtype = |t: &HostTensor| match t.dtype {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        other => panic!("fixture dtype {other}"),
    };
    let text = b"a b\nab c</w>\n".to_vec();
    let mut views: Vec<(String, TensorView)> =
        tensors.iter().map(|(k, t)| (k.clone(), TensorView::new(dtype(t), t.shape.dims().to_vec(), &t.bytes).unwrap())).collect();
    views.push((key.to_string(), TensorView::new(Dtype::U8, vec![text.len()], &text).unwrap()));
    let meta = std::collections::HashMap::from([(CONFIG_KEY.to_string(), file.metadata(CONFIG_KEY).unwrap().to_string())]);
    let path = dir.join(name);
    std::fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    path
}

/// A clip_text file carries its tokenizer's merges beside the parameters: `build`, `verify` and
/// `inspect` accept that key there, and only there.
#[test]
fn the_tokenizer_tensor_is_accepted_in_a_text_encoder_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, ..) = small_fixture();
    let with_tokenizer = with_u8_tensor(dir.path(), "clip.safetensors", &clip, TOKENIZER_MERGES_KEY);
    let fixture_path = fixture("clip_text_small.fixture.safetensors");
    let (code, stdout, stderr) =
        crate::ditrt(&["verify", "--weights", with_tokenizer.to_str().unwrap(), "--fixture", fixture_path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = crate::ditrt(&["inspect", with_tokenizer.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("per prompt") && stdout.contains("at 77 tokens"), "{stdout}");
    assert!(stdout.contains("parameters: 20608 ") && stdout.contains("check: all 37 tensors match"), "{stdout}");

    let dit = SafetensorsFile::open(fixture("dit_p2.safetensors")).unwrap();
    let dit_with = with_u8_tensor(dir.path(), "dit.safetensors", &dit, TOKENIZER_MERGES_KEY);
    let config = ModelConfig::from_file(&dit).unwrap();
    let file = SafetensorsFile::open(&dit_with).unwrap();
    let err = config.build(&mut FileWeights::new(&file), 1, DType::F32).err().expect("a DiT has no tokenizer").to_string();
    assert!(err.contains(TOKENIZER_MERGES_KEY) && err.contains("unexpected key"), "{err}");
}

/// A fixture whose token id is past the vocabulary is refused naming the fixture and the key.
#[test]
fn verify_refuses_a_token_id_outside_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = read_all(fixture("clip_text_small.fixture.safetensors")).unwrap();
    let mut ids = ids_of(&tensors["input_ids"]);
    ids[3] = 1000;
    tensors.insert("input_ids".into(), HostTensor::from_u32([3, 77], &ids));
    let path = dir.path().join("bad.fixture.safetensors");
    let refs: Vec<(&str, &HostTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    ditrt::io::safetensors::write_safetensors(&path, &refs, &BTreeMap::new()).unwrap();
    let weights = fixture("clip_text_small.safetensors");
    let (code, _, stderr) =
        crate::ditrt(&["verify", "--weights", weights.to_str().unwrap(), "--fixture", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.fixture.safetensors") && stderr.contains("input_ids") && stderr.contains("token id 1000"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn clip_l14_text_counts() {
    let cfg = ModelConfig::ClipText(ClipTextConfig::preset("CLIP-ViT-L/14-text").unwrap());
    // transformers' CLIPTextModel of openai/clip-vit-large-patch14: 123,060,480 parameters.
    assert_eq!(cfg.param_count(), 123_060_480);
    // 12 x (77 x (4 x 768^2 + 2 x 768 x 3072) + 2 x 77^2 x 768).
    assert_eq!(cfg.macs_per_image(), 6_649_251_840.0);
    assert!(cfg.sampling().is_err());
    assert!(cfg.input_geometry().is_err());
    assert_eq!(ModelConfig::preset_any("CLIP-ViT-L/14-text").unwrap(), cfg);
}

#[test]
fn clip_text_configs_are_checked() {
    let base = r#""arch":"clip_text","vocab_size":100,"width":32,"layers":1,"intermediate":64,"max_positions":77"#;
    let parse = |rest: &str| ModelConfig::from_json(&format!("{{{base},{rest}}}"), std::path::Path::new("c.json"));
    assert!(parse(r#""heads":4,"act":"quick_gelu","eps":1e-5"#).is_ok());
    assert!(parse(r#""heads":4,"act":"gelu","eps":1e-5"#).is_ok());
    for (rest, needle) in [
        (r#""heads":5,"act":"gelu","eps":1e-5"#, "not a multiple of heads"),
        (r#""heads":4,"act":"relu","eps":1e-5"#, "relu"),
        (r#""heads":4,"act":"gelu","eps":0"#, "eps"),
        (r#""heads":4,"act":"gelu","eps":1e-5,"pooled":true"#, "pooled"),
        (r#""heads":0,"act":"gelu","eps":1e-5"#, "heads must be positive"),
    ] {
        let err = parse(rest).unwrap_err().to_string();
        assert!(err.contains(needle) && !err.contains('\n'), "{rest}: {err}");
    }
}
