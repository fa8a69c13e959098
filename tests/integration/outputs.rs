//! Outputs for FID evaluation and clusters: empty shards, PNG folders, labels in the npz, zip64,
//! the free-disk check, `--shard auto` from Slurm and Kubernetes variables, and `ditrt merge`.
use std::path::Path;
use std::process::Command;

use ditrt::io::image::Images;
use ditrt::io::npz::{NpzLayout, NpzReader, NpzWriter};

use crate::ditrt;
use crate::reliability::assert_one_line_error;
use crate::sample_cli::{parse_npz, read_npz, Npz};

/// `ditrt sample` of the bundled digits DiT (16x16, 10 classes), 2 steps on the CPU, with
/// `env` set (and the shard variables of the test's own environment removed).
fn sample(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ditrt"));
    cmd.args(["sample", "--steps", "2", "--backend", "cpu", "--seed", "3"]).args(args);
    for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX"] {
        cmd.env_remove(var);
    }
    let o = cmd.envs(env.iter().map(|(k, v)| (k, v))).output().expect("run ditrt");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = sample(args, &[]);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    stdout
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Exit 2 with one error line naming every needle.
fn one_line_error((code, _, stderr): (i32, String, String), needles: &[&str]) {
    assert_one_line_error(code, &stderr, needles);
}

#[test]
fn an_empty_shard_is_written_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("empty.npz");
    let stdout = ok(&["--num", "3", "--shard", "0/4", "--out", npz.to_str().unwrap()]);
    assert!(stdout.contains("(0 images, 16x16)"), "{stdout}");
    let read = Npz::read(&npz);
    assert_eq!(read.member("arr_0").unwrap().shape, [0, 16, 16, 3]);
    assert_eq!(read.labels(), Some(vec![]));
    let folder = dir.path().join("empty");
    ok(&["--num", "3", "--shard", "0/4", "--out", &format!("{}/", folder.display())]);
    assert_eq!(names(&folder), [".ditrt-run-0-0.json"]);
}

#[test]
fn a_folder_holds_one_png_per_image_named_by_index_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let folder = format!("{}/fid/", dir.path().display());
    // Two shards into one folder, as a cluster writes it; the npz of the whole run to compare.
    for shard in ["0/2", "1/2"] {
        ok(&["--num", "12", "--class", "3,7", "--batch", "5", "--shard", shard, "--out", &folder]);
    }
    let npz = dir.path().join("all.npz");
    ok(&["--num", "12", "--class", "3,7", "--out", npz.to_str().unwrap()]);
    let (_, pixels) = read_npz(&npz);
    let want: Vec<String> = (0..12).map(|i| format!("{i:06}_class{}.png", [3, 7][i % 2])).collect();
    let found = names(Path::new(&folder));
    assert_eq!(found[..2], [".ditrt-run-0-6.json", ".ditrt-run-6-12.json"]);
    assert_eq!(found[2..], want[..]);
    for (i, name) in want.iter().enumerate() {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(Path::new(&folder).join(name)).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut rgb).unwrap();
        assert_eq!(rgb, pixels[i * 16 * 16 * 3..][..16 * 16 * 3], "{name} differs from image {i} of the npz");
    }
    // A complete shard of the folder is kept on rerun.
    let stdout = ok(&["--num", "12", "--class", "3,7", "--shard", "1/2", "--out", &folder]);
    assert!(stdout.starts_with("kept"), "{stdout}");
}

/// `labels` (int64) follows `arr_0`; random classes depend on (seed, index) only, so a shard's
/// labels are its slice of the whole run's.
#[test]
fn the_npz_carries_labels_beside_arr_0() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, shard) = (dir.path().join("whole.npz"), dir.path().join("shard.npz"));
    ok(&["--num", "9", "--class", "random", "--out", whole.to_str().unwrap()]);
    ok(&["--num", "9", "--class", "random", "--shard", "1/3", "--out", shard.to_str().unwrap()]);
    let npz = Npz::read(&whole);
    assert_eq!(npz.members.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["arr_0", "labels"]);
    assert_eq!(npz.member("arr_0").unwrap().shape, [9, 16, 16, 3]);
    let labels = npz.labels().unwrap();
    assert_eq!(npz.member("labels").unwrap().shape, [9]);
    assert!(labels.iter().all(|y| (0..10).contains(y)), "{labels:?}");
    assert!(labels.iter().any(|&y| y != labels[0]), "9 random classes all equal: {labels:?}");
    assert_eq!(Npz::read(&shard).labels().unwrap(), labels[3..6]);
}

/// The writer's zip64 path on a small file: zip64 local extra fields, central extra fields, the
/// zip64 end record and locator, and 0xFFFFFFFF in the classic fields they replace.
#[test]
fn a_forced_zip64_npz_has_zip64_records_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.npz");
    let layout = NpzLayout { count: 3, height: 2, width: 2, labelled: true, force_zip64: true };
    let mut w = NpzWriter::create(&path, layout, "key").unwrap();
    let rgb: Vec<u8> = (0..3 * 2 * 2 * 3).map(|v| v as u8).collect();
    w.append(&rgb[..12], &[4]).unwrap();
    w.append(&rgb[12..], &[5, 6]).unwrap();
    assert!(!path.exists(), "the npz appeared before it was complete");
    w.finish().unwrap();

    let b = std::fs::read(&path).unwrap();
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // Local header of arr_0: version 45, sizes in the zip64 extra field (id 1, 16 bytes).
    assert_eq!((u16_at(4), u32_at(18), u32_at(22)), (45, u32::MAX, u32::MAX));
    let name_len = u16_at(26) as usize;
    assert_eq!((u16_at(28), u16_at(30 + name_len), u16_at(32 + name_len)), (20, 1, 16));
    // End record: the central directory's offset is in the zip64 end record.
    let end = b.len() - 22 - 3;
    assert_eq!(&b[end..end + 4], b"PK\x05\x06");
    assert_eq!(u32_at(end + 16), u32::MAX);
    assert_eq!(&b[end - 20..end - 16], b"PK\x06\x07");
    assert_eq!(&b[end - 76..end - 72], b"PK\x06\x06");
    let npz = parse_npz(&b);
    assert!(npz.zip64);
    assert_eq!(npz.comment, "key");
    assert_eq!(npz.member("arr_0").unwrap().data, rgb);
    assert_eq!(npz.labels(), Some(vec![4, 5, 6]));
    // ditrt's own reader follows the same records.
    let reader = NpzReader::open(&path).unwrap();
    assert_eq!(reader.array("arr_0").unwrap().unwrap().shape, [3, 2, 2, 3]);
    // Fewer images than announced: refused, nothing under the final name.
    let short = dir.path().join("short.npz");
    let mut w = NpzWriter::create(&short, NpzLayout { force_zip64: false, ..layout }, "").unwrap();
    w.append(&rgb[..12], &[1]).unwrap();
    assert!(w.finish().unwrap_err().to_string().contains("incomplete"));
    assert_eq!(names(dir.path()), ["z.npz"]);
}

#[test]
fn a_run_larger_than_the_disk_or_a_grid_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("x.npz");
    one_line_error(sample(&["--num", "18446744073709551615", "--batch", "4", "--out", npz.to_str().unwrap()], &[]), &["x.npz", "GB free"]);
    let folder = format!("{}/f/", dir.path().display());
    one_line_error(sample(&["--num", "100000000000", "--out", &folder], &[]), &["GB free"]);
    let png = dir.path().join("x.png");
    one_line_error(sample(&["--num", "1025", "--out", png.to_str().unwrap()], &[]), &["at most 1024 images", "--out DIR/"]);
    assert!(names(dir.path()).is_empty(), "refused runs left files");
}

/// Three shards as a Slurm array job runs them (separate processes, task ids 10..12), merged:
/// the same arr_0 and labels as one run, byte for byte; likewise a Kubernetes Indexed Job's
/// shards written into one folder.
#[test]
fn slurm_and_kubernetes_shards_merge_to_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = ["--num", "7", "--class", "random", "--batch", "2"];
    let children: Vec<_> = (0..3)
        .map(|i| {
            let out = path(&format!("shard{i}.npz"));
            let env = [("SLURM_ARRAY_TASK_ID", (10 + i).to_string()), ("SLURM_ARRAY_TASK_MIN", "10".into()), ("SLURM_ARRAY_TASK_COUNT", "3".into())];
            let args: Vec<String> = run.iter().map(|a| a.to_string()).chain(["--shard".into(), "auto".into(), "--out".into(), out]).collect();
            std::thread::spawn(move || sample(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env))
        })
        .collect();
    for child in children {
        let (code, _, stderr) = child.join().unwrap();
        assert_eq!(code, 0, "{stderr}");
    }
    ok(&[&run[..], &["--out", &path("one.npz")]].concat());
    let one = Npz::read(Path::new(&path("one.npz")));
    let (code, stdout, stderr) = ditrt(&["merge", &path("shard2.npz"), &path("shard0.npz"), &path("shard1.npz"), "-o", &path("all.npz")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(7 images from 3 shards"), "{stdout}");
    let all = Npz::read(Path::new(&path("all.npz")));
    assert_eq!(all.member("arr_0"), one.member("arr_0"), "merged arr_0 differs from one run");
    assert_eq!(all.labels(), one.labels());
    assert_eq!(all.comment, one.comment, "the merge's run key is one run's");

    let folder = format!("{}/k8s/", dir.path().display());
    for i in 0..3 {
        let args = [&run[..], &["--shard", "auto", "--shards", "3", "--out", &folder]].concat();
        let (code, _, stderr) = sample(&args, &[("JOB_COMPLETION_INDEX", i.to_string())]);
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, _, stderr) = ditrt(&["merge", &folder, "-o", &path("k8s.npz")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(Npz::read(Path::new(&path("k8s.npz"))).member("arr_0"), one.member("arr_0"));
    // And back out to a folder.
    let (code, _, stderr) = ditrt(&["merge", &path("all.npz"), "-o", &format!("{}/", path("again"))]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(Path::new(&path("again"))).len(), 8);
}

#[test]
fn merge_refuses_gaps_overlaps_and_foreign_shards() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (name, extra) in [("s0.npz", ["--shard", "0/3"]), ("s2.npz", ["--shard", "2/3"]), ("half.npz", ["--shard", "0/2"])] {
        ok(&[&["--num", "6", "--out", &path(name)][..], &extra[..]].concat());
    }
    ok(&["--num", "6", "--shard", "1/3", "--seed", "4", "--out", &path("other.npz")]);
    let out = path("all.npz");
    one_line_error(ditrt(&["merge", &path("s0.npz"), &path("s2.npz"), "-o", &out]), &["s2.npz", "images [2, 4)", "in no shard"]);
    one_line_error(ditrt(&["merge", &path("s0.npz"), &path("half.npz"), &path("s2.npz"), "-o", &out]), &["half.npz", "also in another shard"]);
    one_line_error(ditrt(&["merge", &path("s0.npz"), &path("other.npz"), &path("s2.npz"), "-o", &out]), &["other.npz", "another run"]);
    assert!(!Path::new(&out).exists());
}

/// A class-conditional batch goes through the sink API as the CLI's does (shape and label
/// checks of the npz writer).
#[test]
fn the_npz_writer_refuses_batches_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let layout = NpzLayout { count: 1, height: 2, width: 2, labelled: true, force_zip64: false };
    let mut w = NpzWriter::create(&dir.path().join("w.npz"), layout, "").unwrap();
    let grey = Images { count: 1, height: 2, width: 2, channels: 1, pixels: vec![9; 4] };
    assert!(w.append(&grey.to_rgb(), &[]).is_err(), "a labelled npz took an image without its class");
    w.append(&grey.to_rgb(), &[2]).unwrap();
    assert!(w.append(&grey.to_rgb(), &[2]).is_err(), "more images than announced");
}

/// A damaged shard (a name length or directory size pointing past the data) is one line naming
/// the file, never a panic or an absurd allocation.
#[test]
fn merge_refuses_damaged_shards_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("s.npz");
    ok(&["--num", "2", "--out", good.to_str().unwrap()]);
    let bytes = std::fs::read(&good).unwrap();
    let central = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    let end = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]).unwrap();
    let mut long_name = bytes.clone();
    long_name[central + 28..central + 30].copy_from_slice(&u16::MAX.to_le_bytes());
    let mut huge_directory = bytes.clone();
    huge_directory[end + 12..end + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    for (name, damaged) in [("long-name.npz", long_name), ("huge-directory.npz", huge_directory)] {
        let path = dir.path().join(name);
        std::fs::write(&path, damaged).unwrap();
        let out = dir.path().join("all.npz");
        one_line_error(ditrt(&["merge", path.to_str().unwrap(), "-o", out.to_str().unwrap()]), &[name, "not an .npz"]);
    }
}
