//! Where a run's images go, behind one interface that takes them batch by batch as they are
//! made: an .npz streamed to disk (`npz`), a folder of PNGs (`png_folder`), or a labelled PNG
//! grid (the one output held in memory, so capped at `GRID_LIMIT` images). Each output carries
//! the run key of what made it, read back to skip a complete shard and to check a merge; the
//! shard readers give the images of finished outputs back to `ditrt merge`.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::atomic::{check_writable, free_bytes};
use crate::io::image::{read_png_run_key, render_grid, write_png, Images};
use crate::io::latents::read_latents_run_key;
use crate::io::npz::{NpzLayout, NpzReader, NpzWriter};
use crate::io::png_folder::{read_marker, FolderShard, FolderWriter};

/// The most images a PNG grid takes (it is rendered in memory).
pub const GRID_LIMIT: u64 = 1024;

/// What made an output: the run (weights, sampler, seed, classes, ...: everything the pixels
/// depend on), its number of images, and the range [first, end) of them the output holds.
/// Shards of one run differ only in the range; a merge of all of them has the key of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    pub run: serde_json::Value,
    pub num: u64,
    pub first: u64,
    pub end: u64,
}

impl RunKey {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a run key serialises")
    }

    pub fn decode(text: &str) -> Option<RunKey> {
        serde_json::from_str(text).ok()
    }

    /// The same run, any range.
    pub fn same_run(&self, other: &RunKey) -> bool {
        (&self.run, self.num) == (&other.run, other.num)
    }
}

/// A destination for a run's images, in order.
pub trait ImageSink {
    /// The next images and their classes (one per image; empty for an unconditional run).
    fn append(&mut self, images: &Images, labels: &[u32]) -> Result<()>;
    /// Completes the output; before this nothing stands under its final name as complete.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// The nearest of `path` and its parents that exists (`.` for a relative path's end).
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors().find(|p| !p.as_os_str().is_empty() && p.exists()).unwrap_or(Path::new("."))
}

/// What an output will hold.
#[derive(Clone, Debug)]
pub struct SinkSpec {
    pub key: RunKey,
    pub height: usize,
    pub width: usize,
    /// Values per pixel of what is written: 3 (RGB) for images, C for latents.
    pub channels: usize,
    /// Images carry classes.
    pub labelled: bool,
    /// Images per row of a grid.
    pub columns: usize,
    /// What a grid writes for label id i (a text run's prompts): `names[i]`, over the first of
    /// consecutive images with that id only. None: the id itself over every image.
    pub label_names: Option<Vec<String>>,
}

impl SinkSpec {
    fn count(&self) -> u64 {
        self.key.end - self.key.first
    }

    fn npz_layout(&self, force_zip64: bool) -> NpzLayout {
        NpzLayout { count: self.count(), height: self.height, width: self.width, labelled: self.labelled, force_zip64 }
    }
}

/// An output named on the command line: `F.png` (grid), `F.npz`, `DIR/` (one PNG per image),
/// or `F.safetensors` (the samples before decoding: `LatentsWriter`).
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Grid(PathBuf),
    Npz(PathBuf),
    Folder(PathBuf),
    Latents(PathBuf),
}

impl Output {
    pub fn parse(path: &Path) -> Result<Output> {
        let text = path.to_string_lossy();
        if text.ends_with('/') {
            return Ok(Output::Folder(path.to_path_buf()));
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("png") => Ok(Output::Grid(path.to_path_buf())),
            Some("npz") => Ok(Output::Npz(path.to_path_buf())),
            Some("safetensors") => Ok(Output::Latents(path.to_path_buf())),
            _ => Err(Error::invalid(format!("--out {text}: expected a .png, .npz or .safetensors (latents) file, or a folder ending in /"))),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Output::Grid(p) | Output::Npz(p) | Output::Folder(p) | Output::Latents(p) => p,
        }
    }

    /// Refuses, before any work, an output that cannot be written or (a grid) cannot hold
    /// `count` images.
    pub fn check(&self, count: u64) -> Result<()> {
        match self {
            Output::Grid(p) if count > GRID_LIMIT => Err(Error::File {
                path: p.clone(),
                msg: format!("a PNG grid holds at most {GRID_LIMIT} images, not {count}: write an .npz or a folder (--out DIR/)"),
            }),
            Output::Grid(p) | Output::Npz(p) | Output::Latents(p) => check_writable(p),
            // The folder itself is made when written; here its nearest existing folder must
            // take files.
            Output::Folder(dir) => match std::fs::metadata(dir) {
                Ok(m) if !m.is_dir() => Err(Error::File { path: dir.clone(), msg: "is not a folder".into() }),
                _ => check_writable(&existing_ancestor(dir).join(".ditrt-write-check")),
            },
        }
    }

    /// The run key a complete output here holds for `key`'s range (any run); None when there
    /// is none.
    pub fn finished_key(&self, key: &RunKey) -> Option<String> {
        match self {
            Output::Grid(p) => read_png_run_key(p),
            Output::Npz(p) => NpzReader::open(p).ok().map(|r| r.comment),
            Output::Folder(dir) => read_marker(dir, key.first, key.end),
            Output::Latents(p) => read_latents_run_key(p),
        }
    }

    /// Refuses, in one line, an output larger than the free space of its disk.
    pub fn check_space(&self, spec: &SinkSpec) -> Result<()> {
        let pixels = spec.count() as u128 * spec.height as u128 * spec.width as u128 * 3;
        let need = match self {
            // Labels (int64), local and .npy headers, central directory, end records, comment.
            Output::Npz(_) => pixels + if spec.labelled { spec.count() as u128 * 8 } else { 0 } + 1024 + spec.key.encode().len() as u128,
            // PNG files: the raw pixels (noise-like images barely compress) and their headers.
            Output::Folder(_) => pixels + spec.count() as u128 * 1024,
            Output::Grid(_) => pixels,
            Output::Latents(_) => spec.count() as u128 * (spec.height * spec.width * spec.channels) as u128 * 4 + 1024,
        };
        match free_bytes(existing_ancestor(self.path())) {
            Some(free) if need > free as u128 => Err(Error::File {
                path: self.path().to_path_buf(),
                msg: format!(
                    "{} images of {}x{} need {:.1} GB, the disk has {:.1} GB free",
                    spec.count(),
                    spec.height,
                    spec.width,
                    need as f64 / 1e9,
                    free as f64 / 1e9
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Opens the output for the images of `spec`.
    pub fn open(&self, spec: &SinkSpec) -> Result<Box<dyn ImageSink>> {
        let key = spec.key.encode();
        Ok(match self {
            Output::Npz(p) => Box::new(NpzWriter::create(p, spec.npz_layout(false), &key)?),
            Output::Folder(dir) => Box::new(FolderWriter::create(dir, spec.key.first, spec.key.end, spec.key.num, &key)?),
            Output::Grid(p) => Box::new(Grid {
                path: p.clone(),
                images: Images { count: 0, height: spec.height, width: spec.width, channels: 3, pixels: Vec::new() },
                labels: Vec::new(),
                names: spec.label_names.clone(),
                last_id: None,
                columns: spec.columns,
                key,
            }),
            Output::Latents(p) => {
                return Err(Error::File { path: p.clone(), msg: "a latents file takes the samples before decoding, not images".into() })
            }
        })
    }
}

impl ImageSink for NpzWriter {
    fn append(&mut self, images: &Images, labels: &[u32]) -> Result<()> {
        NpzWriter::append(self, &images.to_rgb(), labels)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        NpzWriter::finish(*self)
    }
}

impl ImageSink for FolderWriter {
    fn append(&mut self, images: &Images, labels: &[u32]) -> Result<()> {
        FolderWriter::append(self, images, labels)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        FolderWriter::finish(*self)
    }
}

/// A labelled grid, rendered and written when complete.
struct Grid {
    path: PathBuf,
    images: Images,
    labels: Vec<String>,
    names: Option<Vec<String>>,
    /// Label id of the last image appended.
    last_id: Option<u32>,
    columns: usize,
    key: String,
}

impl ImageSink for Grid {
    fn append(&mut self, images: &Images, labels: &[u32]) -> Result<()> {
        self.images.count += images.count;
        self.images.pixels.extend(images.to_rgb());
        for &id in labels {
            let label = match &self.names {
                None => id.to_string(),
                Some(_) if self.last_id == Some(id) => String::new(),
                Some(names) => names.get(id as usize).cloned().unwrap_or_else(|| id.to_string()),
            };
            self.labels.push(label);
            self.last_id = Some(id);
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        let (w, h, rgb) = render_grid(&self.images, &self.labels, self.columns);
        write_png(&self.path, w, h, &rgb, &self.key)
    }
}

/// A finished output read back, for merging: its key and its images by global index.
pub trait ShardSource {
    fn path(&self) -> &Path;
    fn key(&self) -> &RunKey;
    /// (height, width), where the shard says (an empty folder shard does not).
    fn geometry(&self) -> Option<(usize, usize)>;
    /// Whether images carry classes, where the shard says.
    fn labelled(&self) -> Option<bool>;
    /// Images first..first + count (global indices inside the shard) and their classes.
    fn read(&self, first: u64, count: usize) -> Result<(Images, Vec<u32>)>;
}

fn decode_key(path: &Path, text: &str) -> Result<RunKey> {
    RunKey::decode(text).ok_or_else(|| Error::File { path: path.to_path_buf(), msg: "carries no ditrt run key: not written by ditrt sample".into() })
}

/// The shards in `path`: an .npz written by ditrt (one), or a folder (one per complete shard).
pub fn open_shards(path: &Path) -> Result<Vec<Box<dyn ShardSource>>> {
    if path.is_dir() {
        let mut shards: Vec<Box<dyn ShardSource>> = Vec::new();
        for shard in FolderShard::all_in(path)? {
            let key = decode_key(path, &shard.run_key)?;
            let geometry = match shard.labelled() {
                Some(_) => shard.read(shard.first).map(|(_, h, w, _)| Some((h, w)))?,
                None => None,
            };
            shards.push(Box::new(FolderSource { shard, key, geometry }));
        }
        return Ok(shards);
    }
    let reader = NpzReader::open(path)?;
    let key = decode_key(path, &reader.comment)?;
    let err = |msg: String| Error::File { path: path.to_path_buf(), msg };
    let pixels = reader.array("arr_0")?.ok_or_else(|| err("holds no arr_0".into()))?;
    let labels = reader.array("labels")?;
    match (pixels.descr.as_str(), &pixels.shape[..]) {
        ("|u1", &[n, h, w, 3]) if n == key.end - key.first => {
            let geometry = (h as usize, w as usize);
            Ok(vec![Box::new(NpzSource {
                path: path.to_path_buf(),
                reader,
                key,
                pixels: pixels.data_offset,
                labels: labels.map(|l| l.data_offset),
                geometry,
            })])
        }
        _ => Err(err(format!("arr_0 is {} {:?}, not the uint8 N×H×W×3 of its {} images", pixels.descr, pixels.shape, key.end - key.first))),
    }
}

struct NpzSource {
    path: PathBuf,
    reader: NpzReader,
    key: RunKey,
    pixels: u64,
    labels: Option<u64>,
    geometry: (usize, usize),
}

impl ShardSource for NpzSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn key(&self) -> &RunKey {
        &self.key
    }
    fn geometry(&self) -> Option<(usize, usize)> {
        Some(self.geometry)
    }
    fn labelled(&self) -> Option<bool> {
        Some(self.labels.is_some())
    }
    fn read(&self, first: u64, count: usize) -> Result<(Images, Vec<u32>)> {
        let (h, w) = self.geometry;
        let at = first - self.key.first;
        let mut pixels = vec![0u8; count * h * w * 3];
        self.reader.read_at(&mut pixels, self.pixels + at * (h * w * 3) as u64)?;
        let mut labels = Vec::new();
        if let Some(offset) = self.labels {
            let mut bytes = vec![0u8; count * 8];
            self.reader.read_at(&mut bytes, offset + at * 8)?;
            labels = bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as u32).collect();
        }
        Ok((Images { count, height: h, width: w, channels: 3, pixels }, labels))
    }
}

struct FolderSource {
    shard: FolderShard,
    key: RunKey,
    geometry: Option<(usize, usize)>,
}

impl ShardSource for FolderSource {
    fn path(&self) -> &Path {
        &self.shard.dir
    }
    fn key(&self) -> &RunKey {
        &self.key
    }
    fn geometry(&self) -> Option<(usize, usize)> {
        self.geometry
    }
    fn labelled(&self) -> Option<bool> {
        self.shard.labelled()
    }
    fn read(&self, first: u64, count: usize) -> Result<(Images, Vec<u32>)> {
        let mut images = Images { count, height: 0, width: 0, channels: 3, pixels: Vec::new() };
        let mut labels = Vec::new();
        for index in first..first + count as u64 {
            let (rgb, h, w, class) = self.shard.read(index)?;
            if Some((h, w)) != self.geometry {
                return Err(Error::File { path: self.shard.dir.clone(), msg: format!("image {index} is {h}x{w}, unlike the shard's first") });
            }
            (images.height, images.width) = (h, w);
            images.pixels.extend(rgb);
            labels.extend(class);
        }
        Ok((images, labels))
    }
}
