//! A folder of PNGs, one per image, as pytorch-fid and clean-fid read them: `000123.png`, or
//! `000123_class7.png` for a class-conditional run, the global index zero-padded to the run's
//! width (at least 6 digits). Each PNG is written atomically and carries the run key; a shard
//! is complete when its marker `.ditrt-run-FIRST-END.json` (its run key) is there, written
//! last. Shards of one run may share a folder: names never collide.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::atomic::write_atomically;
use crate::io::image::{write_png, Images};

/// Digits of the names of a run of `num` images.
fn name_width(num: u64) -> usize {
    num.saturating_sub(1).to_string().len().max(6)
}

/// File name of image `index` of a run of `num` images.
pub fn image_name(index: u64, class: Option<u32>, num: u64) -> String {
    let w = name_width(num);
    match class {
        Some(y) => format!("{index:0w$}_class{y}.png"),
        None => format!("{index:0w$}.png"),
    }
}

/// (index, class) of a name `image_name` gives.
fn parse_name(name: &str) -> Option<(u64, Option<u32>)> {
    let stem = name.strip_suffix(".png")?;
    let (index, class) = match stem.split_once("_class") {
        Some((i, y)) => (i, Some(y.parse().ok()?)),
        None => (stem, None),
    };
    Some((index.parse().ok()?, class))
}

fn marker(dir: &Path, first: u64, end: u64) -> PathBuf {
    dir.join(format!(".ditrt-run-{first}-{end}.json"))
}

/// The run key of the complete shard [first, end) in `dir`, if there is one.
pub fn read_marker(dir: &Path, first: u64, end: u64) -> Option<String> {
    std::fs::read_to_string(marker(dir, first, end)).ok()
}

/// Writes images first..end of a run of `num` into `dir`, one PNG each, then the marker.
pub struct FolderWriter {
    dir: PathBuf,
    next: u64,
    first: u64,
    end: u64,
    num: u64,
    run_key: String,
}

impl FolderWriter {
    /// A shard that is written again loses its marker first: until it is complete again it
    /// is not taken for complete (its images are overwritten one by one).
    pub fn create(dir: &Path, first: u64, end: u64, num: u64, run_key: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::File { path: dir.to_path_buf(), msg: format!("cannot create the folder: {e}") })?;
        let _ = std::fs::remove_file(marker(dir, first, end));
        Ok(FolderWriter { dir: dir.to_path_buf(), next: first, first, end, num, run_key: run_key.to_string() })
    }

    /// The next images and their classes (one each, or none for an unconditional run).
    pub fn append(&mut self, images: &Images, labels: &[u32]) -> Result<()> {
        if self.next + images.count as u64 > self.end {
            return Err(Error::File { path: self.dir.clone(), msg: format!("more than the {} images of the shard", self.end - self.first) });
        }
        let rgb = images.to_rgb();
        let per = images.height * images.width * 3;
        for (n, pixels) in rgb.chunks_exact(per).enumerate() {
            let name = image_name(self.next + n as u64, labels.get(n).copied(), self.num);
            write_png(&self.dir.join(name), images.width, images.height, pixels, &self.run_key)?;
        }
        self.next += images.count as u64;
        Ok(())
    }

    /// Writes the marker: the shard is complete.
    pub fn finish(self) -> Result<()> {
        if self.next != self.end {
            return Err(Error::File {
                path: self.dir.clone(),
                msg: format!("{} of {} images written", self.next - self.first, self.end - self.first),
            });
        }
        write_atomically(&marker(&self.dir, self.first, self.end), self.run_key.as_bytes())
    }
}

/// A complete shard in a folder: its range, run key and image files.
pub struct FolderShard {
    pub dir: PathBuf,
    pub first: u64,
    pub end: u64,
    pub run_key: String,
    /// index -> (file name, class), for the shard's range.
    files: BTreeMap<u64, (String, Option<u32>)>,
}

impl FolderShard {
    /// Every complete shard in `dir` (one per marker), in no particular order.
    pub fn all_in(dir: &Path) -> Result<Vec<FolderShard>> {
        let err = |e: std::io::Error| Error::File { path: dir.to_path_buf(), msg: format!("cannot read the folder: {e}") };
        let names: Vec<String> = std::fs::read_dir(dir).map_err(err)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        let mut shards = Vec::new();
        for name in &names {
            let Some((first, end)) = name.strip_prefix(".ditrt-run-").and_then(|r| r.strip_suffix(".json")?.split_once('-')) else {
                continue;
            };
            let (Ok(first), Ok(end)) = (first.parse::<u64>(), end.parse::<u64>()) else { continue };
            let run_key = std::fs::read_to_string(dir.join(name)).map_err(err)?;
            let files =
                names.iter().filter_map(|n| parse_name(n).map(|(i, y)| (i, (n.clone(), y)))).filter(|(i, _)| (first..end).contains(i)).collect();
            shards.push(FolderShard { dir: dir.to_path_buf(), first, end, run_key, files });
        }
        if shards.is_empty() {
            return Err(Error::File { path: dir.to_path_buf(), msg: "holds no complete shard (no .ditrt-run-*.json marker)".into() });
        }
        Ok(shards)
    }

    /// Whether the images carry classes (None for an empty shard).
    pub fn labelled(&self) -> Option<bool> {
        self.files.values().next().map(|(_, y)| y.is_some())
    }

    /// Image `index` of the shard: (RGB pixels, height, width, class).
    pub fn read(&self, index: u64) -> Result<(Vec<u8>, usize, usize, Option<u32>)> {
        let (name, class) = self.files.get(&index).ok_or_else(|| Error::File {
            path: self.dir.clone(),
            msg: format!("image {index} of the shard [{}, {}) is missing", self.first, self.end),
        })?;
        let path = self.dir.join(name);
        let err = |msg: String| Error::File { path: path.clone(), msg };
        let file = std::fs::File::open(&path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().map_err(|e| err(format!("PNG: {e}")))?;
        let info = reader.info();
        if (info.color_type, info.bit_depth) != (png::ColorType::Rgb, png::BitDepth::Eight) {
            return Err(err("not an 8-bit RGB PNG as ditrt writes them".into()));
        }
        let (w, h) = (info.width as usize, info.height as usize);
        let mut rgb = vec![0u8; w * h * 3];
        reader.next_frame(&mut rgb).map_err(|e| err(format!("PNG: {e}")))?;
        Ok((rgb, h, w, *class))
    }
}
