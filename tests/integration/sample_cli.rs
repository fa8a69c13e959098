//! `ditrt sample`: outputs, determinism, shards and errors, through the binary.
use std::path::Path;
use std::process::Command;

use crate::fixture;

/// `ditrt sample` of the latent fixture DiT (4x8x8, random weights) decoded through the
/// fixture VAE (x8) to 64x64 images.
fn sample(args: &[&str], out: &Path) -> (i32, String, String) {
    let weights = fixture("dit_p2.safetensors");
    let vae = fixture("vae_f8.safetensors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ditrt"));
    // Later flags override earlier ones (args_override_self).
    cmd.args(["sample", "--weights", weights.to_str().unwrap(), "--vae", vae.to_str().unwrap()]);
    cmd.args(["--steps", "3", "--backend", "cpu", "--out", out.to_str().unwrap()]);
    let o = cmd.args(args).output().expect("run ditrt");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

/// One array of an .npz: numpy dtype, shape and data bytes.
#[derive(Debug, PartialEq)]
pub struct NpyMember {
    pub descr: String,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// An .npz as this test reads it, independently of ditrt's reader: every stored member (by
/// name without `.npy`) found through the central directory, zip64 records followed, CRCs
/// checked; `zip64` tells whether the zip64 end records are there.
#[derive(Debug)]
pub struct Npz {
    pub members: Vec<(String, NpyMember)>,
    pub comment: String,
    pub zip64: bool,
}

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n].iter().rev().fold(0, |v, &x| v << 8 | x as u64)
}

pub fn parse_npz(b: &[u8]) -> Npz {
    let end = (0..b.len() - 21)
        .rev()
        .find(|&at| b[at..].starts_with(b"PK\x05\x06") && at + 22 + le(b, at + 20, 2) as usize == b.len())
        .expect("end record");
    let comment = String::from_utf8(b[end + 22..].to_vec()).unwrap();
    let zip64 = end >= 20 && b[end - 20..].starts_with(b"PK\x06\x07");
    let (entries, mut at) = if zip64 {
        let record = le(b, end - 12, 8) as usize;
        assert!(b[record..].starts_with(b"PK\x06\x06"), "zip64 locator points at no zip64 end record");
        (le(b, record + 32, 8), le(b, record + 48, 8) as usize)
    } else {
        (le(b, end + 10, 2), le(b, end + 16, 4) as usize)
    };
    let mut members = Vec::new();
    for _ in 0..entries {
        assert!(b[at..].starts_with(b"PK\x01\x02"), "central header expected at {at}");
        assert_eq!(le(b, at + 10, 2), 0, "stored members only");
        let (name_len, extra_len, comment_len) = (le(b, at + 28, 2) as usize, le(b, at + 30, 2) as usize, le(b, at + 32, 2) as usize);
        let name = String::from_utf8(b[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let mut fields = [le(b, at + 24, 4), le(b, at + 20, 4), le(b, at + 42, 4)];
        let extra = &b[at + 46 + name_len..at + 46 + name_len + extra_len];
        if extra_len > 0 {
            assert_eq!(le(extra, 0, 2), 1, "only the zip64 extra field is expected");
            let mut field = 4;
            for v in fields.iter_mut().filter(|v| **v == 0xFFFF_FFFF) {
                *v = le(extra, field, 8);
                field += 8;
            }
            assert_eq!(field, extra.len(), "zip64 extra length");
        }
        let [size, compressed, offset] = fields.map(|v| v as usize);
        assert_eq!(size, compressed);
        assert!(b[offset..].starts_with(b"PK\x03\x04"), "local header of {name}");
        let data_at = offset + 30 + le(b, offset + 26, 2) as usize + le(b, offset + 28, 2) as usize;
        let npy = &b[data_at..data_at + size];
        assert_eq!(crc32fast::hash(npy), le(b, at + 16, 4) as u32, "CRC of {name}");
        assert_eq!(le(b, offset + 14, 4), le(b, at + 16, 4), "local CRC of {name}");
        let header_len = le(npy, 8, 2) as usize;
        let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
        let descr = header.split("'descr': '").nth(1).unwrap().split('\'').next().unwrap().to_string();
        let dims = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
        let shape: Vec<usize> = dims.split(',').filter_map(|d| d.trim().parse().ok()).collect();
        let member = NpyMember { descr, shape, data: npy[10 + header_len..].to_vec() };
        members.push((name.trim_end_matches(".npy").to_string(), member));
        at += 46 + name_len + extra_len + comment_len;
    }
    Npz { members, comment, zip64 }
}

impl Npz {
    pub fn read(path: &Path) -> Npz {
        parse_npz(&std::fs::read(path).unwrap())
    }

    pub fn member(&self, name: &str) -> Option<&NpyMember> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// The int64 `labels` member.
    pub fn labels(&self) -> Option<Vec<i64>> {
        let m = self.member("labels")?;
        assert_eq!(m.descr, "<i8");
        Some(m.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
    }
}

/// arr_0 of an .npz written by ditrt: (shape, pixels).
pub fn read_npz(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let npz = Npz::read(path);
    let arr = npz.member("arr_0").expect("arr_0");
    assert_eq!(arr.descr, "|u1");
    assert_eq!(arr.data.len(), arr.shape.iter().product::<usize>());
    (arr.shape.clone(), arr.data.clone())
}

#[test]
fn npz_is_deterministic_and_shards_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.npz");
    let (code, stdout, stderr) = sample(&["--num", "5", "--batch", "2", "--seed", "11"], &whole);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().last().unwrap(), format!("wrote {} (5 images, 64x64)", whole.display()));
    let (shape, pixels) = read_npz(&whole);
    assert_eq!(shape, [5, 64, 64, 3]);

    let again = dir.path().join("again.npz");
    assert_eq!(sample(&["--num", "5", "--batch", "3", "--seed", "11"], &again).0, 0);
    assert_eq!(read_npz(&again).1, pixels, "same seed, different pixels (batch 3 vs 2)");

    let mut shards = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("shard{i}.npz"));
        let (code, _, stderr) = sample(&["--num", "5", "--batch", "2", "--seed", "11", "--shard", &format!("{i}/3")], &out);
        assert_eq!(code, 0, "{stderr}");
        shards.extend(read_npz(&out).1);
    }
    assert_eq!(shards, pixels, "shards 0..3 of 3 concatenated differ from one run");
}

#[test]
fn png_grid_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let (code, _, stderr) = sample(&["--class", "2,7", "--num", "4"], &out);
    assert_eq!(code, 0, "{stderr}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    // 2 columns (one per class) of 64x64 decoded images, with labels above.
    assert!(info.width >= 2 * 64 && info.width < 3 * 64, "{}", info.width);
    assert!(info.height >= 2 * 64, "{}", info.height);
}

#[test]
fn bad_requests_fail_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    for (args, needle) in [
        (&["--class", "10"][..], "class id 10 out of range"),
        (&["--shard", "3/3"][..], "--shard '3/3'"),
        (&["--steps", "0"][..], "steps must be in 1..=1000"),
        (&["--dtype", "f8"][..], "[possible values: f32, f16, bf16]"),
        (&["--backend", "tpu"][..], "[possible values: auto, cpu, wgpu, cuda]"),
    ] {
        let (code, _, stderr) = sample(args, &out);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    }
    // A latent model needs a decoder.
    let o = Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["sample", "--weights", fixture("dit_p2.safetensors").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --vae"), "{}", String::from_utf8_lossy(&o.stderr));
    let jpg = dir.path().join("x.jpg");
    let (code, _, stderr) = sample(&[], &jpg);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected a .png, .npz or .safetensors"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a failed run left files behind");
}

#[test]
fn noise_file_and_latents_output_reproduce_a_run() {
    use ditrt::io::safetensors::{read_all, write_safetensors};
    use ditrt::tensor::HostTensor;
    let dir = tempfile::tempdir().unwrap();
    let noise_path = dir.path().join("noise.safetensors");
    let values: Vec<f32> = (0..3 * 4 * 8 * 8).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.7).collect();
    let noise = HostTensor::from_f32([3, 4, 8, 8], &values);
    write_safetensors(&noise_path, &[("noise", &noise)], &Default::default()).unwrap();
    let run = |seed: &str, with_noise: bool, name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["--sampler", "ddim", "--num", "3", "--class", "1,2,3", "--seed", seed];
        if with_noise {
            args.extend(["--noise", noise_path.to_str().unwrap()]);
        }
        let (code, stdout, stderr) = sample(&args, &out);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("latents 4x8x8"), "{stdout}");
        read_all(&out).unwrap()
    };
    let a = run("1", true, "a.safetensors");
    assert_eq!(a["latents"].shape.dims(), [3, 4, 8, 8]);
    assert_eq!(a["labels"].bytes, HostTensor::from_u32([3], &[1, 2, 3]).bytes);
    // DDIM (eta 0) draws nothing after x_T: with x_T from the file the seed changes nothing.
    assert_eq!(run("2", true, "b.safetensors")["latents"].bytes, a["latents"].bytes, "the seed changed a run with --noise");
    assert_ne!(run("1", false, "c.safetensors")["latents"].bytes, a["latents"].bytes, "--noise changed nothing");

    // A noise file of the wrong shape, and a prompt for a class-conditional model: one line each.
    let short = dir.path().join("short.safetensors");
    write_safetensors(&short, &[("noise", &HostTensor::from_f32([2, 4, 8, 8], &values[..512]))], &Default::default()).unwrap();
    let out = dir.path().join("x.safetensors");
    for (args, needle) in [
        (vec!["--num", "3", "--noise", short.to_str().unwrap()], "expected a float tensor of shape [3, 4, 8, 8]"),
        (vec!["--prompt", "a cat"], "--prompt given for a model that takes no text"),
        (vec!["--text-encoder", noise_path.to_str().unwrap()], "this model takes no text"),
    ] {
        let (code, _, stderr) = sample(&args, &out);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    }
    assert!(!out.exists(), "a failed run wrote its output");
}

/// `ditrt sample` of the bundled text-to-image model with `args`.
fn sample_text(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ditrt"))
        .args(["sample", "--model", "uvit_t2i", "--backend", "cpu", "--steps", "2"])
        .args(args)
        .output()
        .expect("run ditrt");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn text_models_take_prompts_and_say_what_is_wrong_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.npz");
    let prompts = dir.path().join("prompts.txt");
    let long = "a very long prompt about a handwritten seven ".repeat(10);
    std::fs::write(&prompts, format!("the digit 3\n\n{long}\n")).unwrap();
    let (code, _, stderr) =
        sample_text(&["--prompt", "seven", "--prompt-file", prompts.to_str().unwrap(), "--num", "2", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("note: prompt 3 has 80 tokens: the text encoder keeps the first 75"), "{stderr}");
    let npz = Npz::read(&out);
    assert_eq!(npz.member("arr_0").unwrap().shape, [6, 16, 16, 3]);
    // labels: each image's prompt index, two images per prompt.
    let labels: Vec<i64> = npz.member("labels").unwrap().data.chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(labels, [0, 0, 1, 1, 2, 2]);

    let wide = fixture("clip_text_hd64.safetensors");
    for (args, needle) in [
        (vec!["--class", "3"], "--class given for a text-conditioned model"),
        (vec![], "needs --prompt TEXT or --prompt-file F"),
        (vec!["--prompt", "7", "--text-encoder", wide.to_str().unwrap()], "the model takes 77 of width 32 as context"),
        (vec!["--prompt", "7", "--weights", fixture("uvit_t2i_conv.safetensors").to_str().unwrap()], "give its text encoder with --text-encoder"),
    ] {
        let bad = dir.path().join("bad.safetensors");
        let (code, _, stderr) = sample_text(&[args.as_slice(), &["-o", bad.to_str().unwrap()]].concat());
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
        assert!(!bad.exists(), "{args:?}: a failed run wrote its output");
    }
}

/// The CPU backend picks its GEMM kernels at run time (`DITRT_CPU_ISA` asks for a lesser family):
/// a whole run — a DiT denoised through the VAE — on the portable and AVX2 kernels must give the
/// pixels of the best family up to rounding (fused vs unfused multiply-adds).
#[test]
fn every_cpu_kernel_family_samples_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let run = |isa: Option<&str>| {
        let out = dir.path().join(format!("{}.npz", isa.unwrap_or("best")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ditrt"));
        cmd.args(["sample", "--weights", fixture("dit_p2.safetensors").to_str().unwrap(), "--vae", fixture("vae_f8.safetensors").to_str().unwrap()]);
        cmd.args(["--steps", "3", "--backend", "cpu", "--num", "3", "--seed", "5", "--out", out.to_str().unwrap()]);
        match isa {
            Some(isa) => cmd.env("DITRT_CPU_ISA", isa),
            None => cmd.env_remove("DITRT_CPU_ISA"),
        };
        let o = cmd.output().expect("run ditrt");
        assert!(o.status.success(), "{isa:?}: {}", String::from_utf8_lossy(&o.stderr));
        read_npz(&out).1
    };
    let best = run(None);
    for isa in ["portable", "avx2"] {
        let pixels = run(Some(isa));
        let worst = pixels.iter().zip(&best).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
        assert!(worst <= 2, "{isa}: a pixel differs by {worst} from the best kernels' run");
    }
}
