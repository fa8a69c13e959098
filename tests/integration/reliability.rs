//! Reliability: NaN/Inf weights, batches too large for memory, absent GPU drivers, interrupted
//! and resumed runs, steady memory. Each failure is one line naming its cause.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ditrt::backend;
use ditrt::io::safetensors::{write_safetensors, SafetensorsFile};
use ditrt::tensor::{DType, HostTensor};

use crate::ditrt;

const BUNDLED_DIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/dit_digits.safetensors");

pub fn assert_one_line_error(code: i32, stderr: &str, needles: &[&str]) {
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error does not mention '{n}': {stderr}");
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// A copy of the bundled DiT at `path`, its tensors and metadata changed by `edit` first.
fn edited_copy(path: &Path, edit: impl FnOnce(&mut Vec<(String, HostTensor)>, &mut BTreeMap<String, String>)) {
    let file = SafetensorsFile::open(BUNDLED_DIT).unwrap();
    let mut tensors: Vec<(String, _)> = file.keys().into_iter().map(|k| (k.clone(), file.tensor(&k).unwrap())).collect();
    let mut meta: BTreeMap<String, String> =
        ["ditrt.config", "ditrt.sampling"].iter().map(|k| (k.to_string(), file.metadata(k).unwrap().to_string())).collect();
    edit(&mut tensors, &mut meta);
    let refs: Vec<(&str, _)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    write_safetensors(path, &refs, &meta).unwrap();
}

/// The bundled DiT with `values` written at the given flat indices of f32 tensor `key`.
fn poisoned_copy_with(path: &Path, key: &str, values: &[(usize, f32)]) {
    edited_copy(path, |tensors, _| {
        let (_, t) = tensors.iter_mut().find(|(k, _)| k == key).unwrap();
        assert_eq!(t.dtype, DType::F32);
        for &(i, v) in values {
            t.bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
    });
}

/// The bundled DiT with one NaN and one Inf in `key`, metadata kept.
fn poisoned_copy(path: &Path, key: &str) {
    poisoned_copy_with(path, key, &[(1, f32::NAN), (10, f32::INFINITY)]);
}

#[test]
fn nan_and_inf_weights_are_named_by_check_weights() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("poisoned.safetensors");
    poisoned_copy(&weights, "blocks.2.mlp.fc1.weight");
    let w = weights.to_str().unwrap();
    let (code, _, stderr) = ditrt(&["inspect", "--check-weights", w]);
    assert_one_line_error(code, &stderr, &[w, "blocks.2.mlp.fc1.weight", "1 NaN and 1 Inf", "first at flat index 1"]);
    // Without the flag inspect reads only the header.
    assert_eq!(ditrt(&["inspect", w]).0, 0);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let png = out.join("x.png");
    let (code, _, stderr) = ditrt(&["sample", "--weights", w, "--check-weights", "--backend", "cpu", "--out", png.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["blocks.2.mlp.fc1.weight", "NaN"]);
    assert!(files_in(&out).is_empty(), "a refused run left {:?}", files_in(&out));
    // The bundled model itself is clean.
    assert_eq!(ditrt(&["inspect", "--check-weights", BUNDLED_DIT]).0, 0);
}

#[test]
fn a_batch_too_large_for_memory_is_refused_before_allocating() {
    let (code, _, stderr) = ditrt(&["bench", "--preset", "DiT-S/2", "--batch", "50000000", "--backend", "cpu", "--warmup", "0", "--iters", "1"]);
    assert_one_line_error(code, &stderr, &["backend cpu", "batch 50000000", "GiB activations", "is free; lower --batch"]);
}

/// The preflight runs before the random weights exist: refusing DiT-XL/2 at a huge batch peaks
/// far below its 2.7 GB of f32 weights (it used to draw them all first, 3.5 GB). The child's
/// high-water mark is read from /proc while it runs: its rusage would include this test
/// process's own size (Linux records the spawning memory's peak at exec).
#[test]
fn bench_refuses_a_huge_batch_before_drawing_weights() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["bench", "--preset", "DiT-XL/2", "--batch", "100000", "--backend", "cpu", "--warmup", "0", "--iters", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak_kib, mut readings) = (0u64, 0);
    let status = loop {
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())));
        if let Some(kib) = hwm {
            (peak_kib, readings) = (peak_kib.max(kib), readings + 1);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(2));
    assert!(readings > 0, "the child ended before its memory could be read");
    let peak_mib = peak_kib as f64 / 1024.0;
    assert!(peak_mib < 512.0, "peak resident {peak_mib:.0} MiB while refusing");
}

/// `--backend cuda` without the feature, the driver or a device is one line; `auto` then falls
/// back to another backend.
#[test]
fn cuda_without_a_driver_is_one_line_and_auto_falls_back() {
    match backend::select("cuda") {
        Ok(gpu) => eprintln!("skipped: a CUDA device answers here ({})", gpu.name()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("backend cuda: ") && !msg.contains('\n'), "{msg}");
            let expected = if cfg!(feature = "cuda") { "no CUDA driver" } else { "not compiled in" };
            assert!(msg.contains(expected) || msg.contains("no usable device"), "{msg}");
            let auto = backend::select("auto").unwrap();
            assert!(!auto.name().starts_with("cuda"), "{}", auto.name());
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("x.png");
            let (code, _, stderr) = ditrt(&["sample", "--backend", "cuda", "--out", out.to_str().unwrap()]);
            assert_one_line_error(code, &stderr, &["backend cuda: "]);
            assert!(files_in(dir.path()).is_empty());
        }
    }
}

#[test]
fn a_killed_run_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["sample", "--num", "64", "--steps", "1000", "--backend", "cpu", "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "1000 steps of 64 images finished in 1.5 s: the test no longer interrupts anything");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(files_in(dir.path()).is_empty(), "killed run left {:?}", files_in(dir.path()));
}

/// A `--shard` run whose output is already complete for the same run is skipped, so a killed
/// many-shard run resumes where it stopped; another run's file under that name is replaced.
#[test]
fn shard_runs_skip_complete_shards_and_replace_other_runs() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["npz", "png"] {
        let out = dir.path().join(format!("shard0.{ext}"));
        let o = out.to_str().unwrap();
        let base = ["sample", "--num", "4", "--steps", "2", "--backend", "cpu", "--shard", "0/2", "--out", o];
        let (code, stdout, stderr) = ditrt(&base);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(&format!("wrote {o} (2 images")), "{stdout}");
        let written = std::fs::read(&out).unwrap();

        let (code, stdout, stderr) = ditrt(&base);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout.trim(), format!("kept {o}: shard 0/2 of this run is already complete (2 images)"), "{stderr}");
        assert_eq!(std::fs::read(&out).unwrap(), written);

        let (code, stdout, stderr) = ditrt(&[&base[..], &["--seed", "5"]].concat());
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("holds another run's images: it will be replaced"), "{stderr}");
        assert!(stdout.contains(&format!("wrote {o}")), "{stdout}");
        assert_ne!(std::fs::read(&out).unwrap(), written, "--seed 5 wrote the seed-0 images");
    }
    assert_eq!(files_in(dir.path()).len(), 2, "{:?}", files_in(dir.path()));
}

/// `ditrt soak` in its own process (resident memory is per process): growth after the warm-up.
fn soak_growth_mib(steps: usize, batch: usize) -> f64 {
    let (code, stdout, stderr) = ditrt(&["soak", "--steps", &steps.to_string(), "--batch", &batch.to_string(), "--backend", "cpu", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(report["steps"].as_u64().unwrap() >= steps as u64, "{report}");
    assert!(report["rss_after_warmup"].as_u64().unwrap() > 0, "no resident-memory reading: {report}");
    let growth = report["growth_bytes"].as_u64().unwrap() as f64 / (1u64 << 20) as f64;
    println!("{steps} steps at batch {batch}: resident growth after warm-up {growth:.2} MiB");
    growth
}

#[test]
fn memory_stays_flat_over_200_sampling_steps() {
    let growth = soak_growth_mib(200, 4);
    assert!(growth <= 2.0, "resident memory grew {growth:.2} MiB after the warm-up");
}

/// The long soak (about 10 minutes on 2 cores): `cargo test --release --test integration
/// memory_stays_flat_over_10000 -- --ignored`.
#[test]
#[ignore]
fn memory_stays_flat_over_10000_sampling_steps() {
    let growth = soak_growth_mib(10_000, 8);
    assert!(growth <= 2.0, "resident memory grew {growth:.2} MiB after the warm-up");
}

/// NaN weights without --check-weights: the run stops at the first evaluation that gives NaN,
/// naming it, instead of writing black images with exit 0.
#[test]
fn non_finite_samples_stop_the_run_at_their_step() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("poisoned.safetensors");
    poisoned_copy(&weights, "final_layer.linear.weight");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let png = out.join("x.png");
    let (code, _, stderr) =
        ditrt(&["sample", "--weights", weights.to_str().unwrap(), "--num", "2", "--backend", "cpu", "--out", png.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["model evaluation 1 of", "NaN/Inf", "--check-weights"]);
    assert!(files_in(&out).is_empty(), "a failed run left {:?}", files_in(&out));
}

/// A weight of 1e6 is finite in f32 but Inf in f16 storage: --check-weights checks the values
/// as they will be stored.
#[test]
fn check_weights_checks_values_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("large.safetensors");
    poisoned_copy_with(&weights, "blocks.0.attn.qkv.weight", &[(3, 1e6)]);
    let w = weights.to_str().unwrap();
    assert_eq!(ditrt(&["inspect", "--check-weights", w]).0, 0);
    let png = dir.path().join("x.png");
    let (code, _, stderr) =
        ditrt(&["sample", "--weights", w, "--check-weights", "--dtype", "f16", "--backend", "cpu", "--out", png.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["blocks.0.attn.qkv.weight", "0 NaN and 1 Inf", "stored as f16", "first at flat index 3"]);
}

/// `inspect` shows keys with control characters escaped, and flags what `sample` would refuse:
/// a non-floating weight dtype and an invalid sampling recipe.
#[test]
fn inspect_escapes_keys_and_flags_what_sample_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("odd.safetensors");
    edited_copy(&weights, |tensors, meta| {
        let (_, t) = tensors.iter_mut().find(|(k, _)| k == "x_embedder.proj.bias").unwrap();
        *t = HostTensor::from_u32(t.shape.dims(), &vec![0; t.shape.dims().iter().product()]);
        tensors.push(("evil\u{1b}[2Jkey\nline".into(), HostTensor::from_f32([1], &[0.0])));
        meta.insert("ditrt.sampling".into(), r#"{"sampler": "ddpm", "steps": 0, "cfg_scale": 1.0}"#.into());
    });
    let (code, stdout, _) = ditrt(&["inspect", weights.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(!stdout.contains('\u{1b}') && stdout.contains("evil\\u{1b}[2Jkey\\nline"), "{stdout}");
    assert!(stdout.contains("check: x_embedder.proj.bias: dtype U32 is not a floating type"), "{stdout}");
    assert!(stdout.contains("check: sampling recipe: "), "{stdout}");
}

/// A directory or a FIFO as --weights is refused at once, saying what it is (a FIFO used to
/// block forever in open); a FIFO as --out likewise.
#[test]
fn weights_and_outputs_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = ditrt(&["inspect", dir.path().to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["is a directory; expected a safetensors file"]);
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_ditrt")).args(["inspect", fifo.to_str().unwrap()]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ditrt inspect on a FIFO did not return within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_one_line_error(out.status.code().unwrap(), &String::from_utf8_lossy(&out.stderr), &["not a regular file"]);
    let fifo_png = dir.path().join("pipe.png");
    assert!(Command::new("mkfifo").arg(&fifo_png).status().unwrap().success());
    let (code, _, stderr) = ditrt(&["sample", "--backend", "cpu", "--shard", "0/2", "--out", fifo_png.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["pipe.png", "not a regular file"]);
}

/// The temporary file of a writer killed during its final write is removed by the next run
/// that writes the same output; a live writer's is left alone.
#[test]
fn temporaries_of_killed_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    // pid_max is at most 2^22 on Linux: no process has this id.
    let stale = dir.path().join(".x.png.tmp4294967");
    let live = dir.path().join(format!(".x.png.tmp{}", std::process::id()));
    std::fs::write(&stale, b"partial").unwrap();
    std::fs::write(&live, b"partial").unwrap();
    let (code, _, stderr) = ditrt(&["sample", "--backend", "cpu", "--num", "1", "--steps", "2", "--out", png.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stale.exists() && live.exists() && png.exists(), "{:?}", files_in(dir.path()));
}

/// Values that come from a file are blamed on it: a recipe whose steps are 0, a fixture whose
/// class ids are out of range or whose inputs have the wrong shape.
#[test]
fn errors_from_file_values_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("zero-steps.safetensors");
    edited_copy(&weights, |_, meta| {
        meta.insert("ditrt.sampling".into(), r#"{"sampler": "ddpm", "steps": 0, "cfg_scale": 1.0}"#.into());
    });
    let png = dir.path().join("x.png");
    let (code, _, stderr) = ditrt(&["sample", "--weights", weights.to_str().unwrap(), "--backend", "cpu", "--out", png.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &[weights.to_str().unwrap(), "ditrt.sampling"]);

    let w = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dit_p2.safetensors");
    let original = ditrt::io::safetensors::read_all(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dit_p2.fixture.safetensors")).unwrap();
    let broken = |name: &str, key: &str, value: HostTensor| {
        let path = dir.path().join(name);
        let mut tensors: Vec<(&str, &HostTensor)> = original.iter().filter(|(k, _)| *k != key).map(|(k, t)| (k.as_str(), t)).collect();
        tensors.push((key, &value));
        write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();
        path
    };
    let batch = original["y"].shape.dims()[0];
    let fixture = broken("bad-y.safetensors", "y", HostTensor::from_u32([batch], &vec![9999; batch]));
    let (code, _, stderr) = ditrt(&["verify", "--weights", w, "--fixture", fixture.to_str().unwrap(), "--backend", "cpu"]);
    assert_one_line_error(code, &stderr, &[fixture.to_str().unwrap(), "tensor 'y'", "class id 9999 is out of range"]);
    let fixture = broken("bad-t.safetensors", "t", HostTensor::from_f32([batch + 1], &vec![1.0; batch + 1]));
    let (code, _, stderr) = ditrt(&["verify", "--weights", w, "--fixture", fixture.to_str().unwrap(), "--backend", "cpu"]);
    assert_one_line_error(code, &stderr, &[fixture.to_str().unwrap(), "tensor 't'"]);
}

/// DiT, TLDM and DiffiT are class-conditional: a config with `num_classes` 0 is refused when the
/// file is opened, in one line (`sample` used to panic on it, `--class random` too).
#[test]
fn a_class_conditional_model_without_classes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("no-classes.safetensors");
    edited_copy(&weights, |_, meta| {
        let config = meta["ditrt.config"].replace("\"num_classes\": 10", "\"num_classes\": 0");
        assert_ne!(config, meta["ditrt.config"], "the bundled config spells num_classes differently");
        meta.insert("ditrt.config".into(), config);
    });
    let w = weights.to_str().unwrap();
    let png = dir.path().join("x.png");
    for args in [vec!["inspect", w], vec!["sample", "--weights", w, "--class", "random", "--backend", "cpu", "--out", png.to_str().unwrap()]] {
        let (code, _, stderr) = ditrt(&args);
        assert_one_line_error(code, &stderr, &[w, "num_classes must be positive"]);
    }
}

/// A key said twice (in the safetensors header, or in the config or recipe JSON) is refused:
/// the parsers would keep the last one silently.
#[test]
fn duplicate_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    let config = dir.path().join("config.safetensors");
    edited_copy(&config, |_, meta| {
        let twice = meta["ditrt.config"].replace("\"depth\": 4", "\"depth\": 4, \"depth\": 2");
        meta.insert("ditrt.config".into(), twice);
    });
    let recipe = dir.path().join("recipe.safetensors");
    edited_copy(&recipe, |_, meta| {
        meta.insert("ditrt.sampling".into(), r#"{"sampler": "ddpm", "steps": 20, "steps": 2, "cfg_scale": 3.0}"#.into());
    });
    for (file, key) in [(&config, "depth"), (&recipe, "steps")] {
        let (code, _, stderr) = ditrt(&["sample", "--weights", file.to_str().unwrap(), "--backend", "cpu", "--out", png.to_str().unwrap()]);
        assert_one_line_error(code, &stderr, &[file.to_str().unwrap(), &format!("key \"{key}\" appears twice")]);
    }
    // A header naming one tensor twice (same place, so the safetensors parser accepts it).
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 4]);
    let twice = dir.path().join("twice.safetensors");
    std::fs::write(&twice, bytes).unwrap();
    let (code, _, stderr) = ditrt(&["inspect", twice.to_str().unwrap()]);
    assert_one_line_error(code, &stderr, &["twice.safetensors", "header", "key \"w\" appears twice"]);
}

/// A finished shard is kept only for the same weights by content: the file changed in place
/// (same name and size, one value different) is another run, whose images replace it.
#[test]
fn a_shard_is_redone_when_the_weights_change_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    edited_copy(&weights, |_, _| {});
    let out = dir.path().join("shard.npz");
    let (w, o) = (weights.to_str().unwrap(), out.to_str().unwrap());
    let args = ["sample", "--weights", w, "--num", "2", "--steps", "2", "--backend", "cpu", "--shard", "0/1", "--out", o];
    assert_eq!(ditrt(&args).0, 0);
    let (code, stdout, _) = ditrt(&args);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("kept "), "{stdout}");
    let size = std::fs::metadata(&weights).unwrap().len();
    poisoned_copy_with(&weights, "final_layer.linear.bias", &[(0, 0.5)]);
    assert_eq!(std::fs::metadata(&weights).unwrap().len(), size);
    let (code, stdout, stderr) = ditrt(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("holds another run's images") && stdout.starts_with("wrote "), "{stdout}{stderr}");
}
