//! `ditrt merge`: shards of one run (npz files or PNG folders) into one output, checked first:
//! every shard carries the same run key but for its range, and the ranges cover [0, num)
//! without gaps or overlaps. Images are streamed: nothing proportional to the run is held.
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::io::sink::{open_shards, Output, RunKey, ShardSource, SinkSpec};

/// Images read and written at a time.
const CHUNK: u64 = 256;

#[derive(Clone, Debug, PartialEq)]
pub struct MergeReport {
    pub shards: usize,
    pub images: u64,
    pub height: usize,
    pub width: usize,
}

/// Checks the shards in `inputs` and writes all their images, in index order, to `out`.
pub fn merge(inputs: &[PathBuf], out: &Output) -> Result<MergeReport> {
    let mut shards: Vec<Box<dyn ShardSource>> = Vec::new();
    for path in inputs {
        shards.extend(open_shards(path)?);
    }
    let first = shards.first().ok_or_else(|| Error::invalid("merge: no shards given"))?;
    let (reference, reference_path) = (first.key().clone(), first.path().to_path_buf());
    let err = |s: &dyn ShardSource, msg: String| Error::File { path: s.path().to_path_buf(), msg };
    for s in &shards {
        if !s.key().same_run(&reference) {
            return Err(err(s.as_ref(), format!("belongs to another run than {} (run keys differ beyond the shard)", reference_path.display())));
        }
    }
    shards.sort_by_key(|s| (s.key().first, s.key().end));
    let mut covered = 0u64;
    for s in &shards {
        let key = s.key();
        if key.first > covered {
            return Err(err(s.as_ref(), format!("images [{covered}, {}) of the run's {} are in no shard given", key.first, key.num)));
        }
        if key.first < covered {
            return Err(err(s.as_ref(), format!("images [{}, {covered}) are also in another shard given", key.first)));
        }
        covered = key.end;
    }
    if covered != reference.num {
        return Err(Error::invalid(format!("merge: images [{covered}, {}) of the run are in no shard given", reference.num)));
    }
    let agree = |what: &str, values: Vec<Option<(usize, usize, bool)>>| -> Result<(usize, usize, bool)> {
        let mut known = values.into_iter().flatten();
        let v = known.next().ok_or_else(|| Error::invalid(format!("merge: the shards hold no images ({what})")))?;
        match known.find(|w| *w != v) {
            Some(_) => Err(Error::invalid(format!("merge: the shards disagree on {what}"))),
            None => Ok(v),
        }
    };
    let (height, width, labelled) =
        agree("image size or labels", shards.iter().map(|s| s.geometry().zip(s.labelled()).map(|((h, w), l)| (h, w, l))).collect())?;
    let spec =
        SinkSpec { key: RunKey { first: 0, end: reference.num, ..reference }, height, width, channels: 3, labelled, columns: 8, label_names: None };
    out.check(reference.num)?;
    out.check_space(&spec)?;
    let mut sink = out.open(&spec)?;
    for s in &shards {
        let mut at = s.key().first;
        while at < s.key().end {
            let n = CHUNK.min(s.key().end - at);
            let (images, labels) = s.read(at, n as usize)?;
            if (images.height, images.width, labels.len() as u64) != (height, width, if labelled { n } else { 0 }) {
                return Err(err(s.as_ref(), "images differ in size or labels from the other shards'".into()));
            }
            sink.append(&images, &labels)?;
            at += n;
        }
    }
    sink.finish()?;
    Ok(MergeReport { shards: shards.len(), images: reference.num, height, width })
}
