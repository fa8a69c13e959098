//! .npz files as numpy's `np.savez` writes them (a zip of stored `.npy` members), written as a
//! stream: the shape is known up front, so every member's size and place is too; pixels and
//! labels are written into place batch by batch with their CRCs computed on the way, and the
//! file is renamed into place when complete. Zip64 records are written where a size or offset
//! passes 4 GiB (a 50k-image 256² run is 9.8 GB), or always when asked.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;

/// Sizes and offsets from here on need zip64 fields.
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;
const LOCAL_SIG: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];
const CENTRAL_SIG: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
const END_SIG: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const END64_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
const LOCATOR64_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
/// Modification time 00:00, date 1980-01-01 (DOS format): outputs do not depend on the clock.
const TIME_DATE: [u8; 4] = [0, 0, 0x21, 0];

/// The `.npy` header of an array (version 1.0, padded so the data starts 64-byte aligned).
fn npy_header(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// One stored member being written: its local header at `offset`, then the .npy bytes.
struct Member {
    name: &'static str,
    offset: u64,
    /// .npy header + data.
    size: u64,
    /// Absolute position of the next data byte; the member's end once complete.
    cursor: u64,
    crc: crc32fast::Hasher,
    zip64: bool,
}

impl Member {
    fn local_header_len(&self) -> u64 {
        30 + self.name.len() as u64 + if self.zip64 { 20 } else { 0 }
    }

    fn end(&self) -> u64 {
        self.offset + self.local_header_len() + self.size
    }

    /// The fields local and central headers share, from the flags to the name's length.
    fn common_fields(&self, crc: u32) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 0]; // flags, method 0 (stored)
        f.extend_from_slice(&TIME_DATE);
        f.extend_from_slice(&crc.to_le_bytes());
        let size32 = if self.zip64 { ZIP32_LIMIT as u32 } else { self.size as u32 };
        f.extend_from_slice(&size32.to_le_bytes());
        f.extend_from_slice(&size32.to_le_bytes());
        f.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        f
    }

    /// The local header, `crc` as given (it is patched in at the end).
    fn local_header(&self, crc: u32) -> Vec<u8> {
        let mut h = LOCAL_SIG.to_vec();
        h.extend_from_slice(&(if self.zip64 { 45u16 } else { 20 }).to_le_bytes());
        h.extend(self.common_fields(crc));
        h.extend_from_slice(&(if self.zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(self.name.as_bytes());
        if self.zip64 {
            h.extend_from_slice(&[1, 0, 16, 0]);
            h.extend_from_slice(&self.size.to_le_bytes());
            h.extend_from_slice(&self.size.to_le_bytes());
        }
        h
    }

    /// The central directory entry; zip64 fields for the sizes when the member has them, for
    /// the offset when it is past 4 GiB (or always when `force`).
    fn central_header(&self, crc: u32, force: bool) -> Vec<u8> {
        let far = force || self.offset >= ZIP32_LIMIT;
        let mut extra = Vec::new();
        if self.zip64 {
            extra.extend_from_slice(&self.size.to_le_bytes());
            extra.extend_from_slice(&self.size.to_le_bytes());
        }
        if far {
            extra.extend_from_slice(&self.offset.to_le_bytes());
        }
        let version: u16 = if extra.is_empty() { 20 } else { 45 };
        let mut h = CENTRAL_SIG.to_vec();
        h.extend_from_slice(&version.to_le_bytes()); // made by
        h.extend_from_slice(&version.to_le_bytes()); // needed
        h.extend(self.common_fields(crc));
        let extra_len = if extra.is_empty() { 0 } else { extra.len() as u16 + 4 };
        h.extend_from_slice(&extra_len.to_le_bytes());
        h.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
        h.extend_from_slice(&(if far { ZIP32_LIMIT as u32 } else { self.offset as u32 }).to_le_bytes());
        h.extend_from_slice(self.name.as_bytes());
        if !extra.is_empty() {
            h.extend_from_slice(&[1, 0]);
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&extra);
        }
        h
    }
}

/// What an images .npz holds.
#[derive(Clone, Copy, Debug)]
pub struct NpzLayout {
    pub count: u64,
    pub height: usize,
    pub width: usize,
    /// A `labels` member (int64, one class per image) beside `arr_0`.
    pub labelled: bool,
    /// Zip64 records even where the sizes do not need them (tests of the zip64 path).
    pub force_zip64: bool,
}

impl NpzLayout {
    /// Data bytes of arr_0 and labels.
    fn member_sizes(&self) -> Option<(u64, u64)> {
        let pixels = self.count.checked_mul(self.height as u64)?.checked_mul(self.width as u64)?.checked_mul(3)?;
        Some((pixels, if self.labelled { self.count.checked_mul(8)? } else { 0 }))
    }
}

/// An .npz of uint8 images N×H×W×3 under `arr_0` (ADM's evaluator and DiT's sample_ddp.py
/// layout) and, when labelled, their int64 classes under `labels`, written image by image.
pub struct NpzWriter {
    file: AtomicFile,
    members: Vec<Member>,
    layout: NpzLayout,
    comment: String,
}

impl NpzWriter {
    /// Starts `path` (under a temporary name) for `layout`; `comment` (the run key) becomes the
    /// archive comment, which numpy ignores.
    pub fn create(path: &Path, layout: NpzLayout, comment: &str) -> Result<Self> {
        let too_large = || Error::File { path: path.to_path_buf(), msg: format!("{} images do not fit one .npz", layout.count) };
        if comment.len() > u16::MAX as usize {
            return Err(Error::invalid("npz comment longer than 64 KiB"));
        }
        let (pixels, labels) = layout.member_sizes().ok_or_else(too_large)?;
        let mut arrays = vec![("arr_0.npy", npy_header("|u1", &[layout.count, layout.height as u64, layout.width as u64, 3]), pixels)];
        if layout.labelled {
            arrays.push(("labels.npy", npy_header("<i8", &[layout.count]), labels));
        }
        let mut file = AtomicFile::create(path)?;
        let mut members = Vec::new();
        let mut offset = 0u64;
        for (name, header, data) in arrays {
            let size = (header.len() as u64).checked_add(data).ok_or_else(too_large)?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            let mut m = Member { name, offset, size, cursor: 0, crc, zip64: layout.force_zip64 || size >= ZIP32_LIMIT };
            m.cursor = offset + m.local_header_len() + header.len() as u64;
            let mut head = m.local_header(0);
            head.extend_from_slice(&header);
            file.file().write_all_at(&head, offset).map_err(|e| file.error(e))?;
            offset = m.end();
            members.push(m);
        }
        Ok(NpzWriter { file, members, layout, comment: comment.to_string() })
    }

    fn put(&mut self, member: usize, bytes: &[u8]) -> Result<()> {
        let m = &mut self.members[member];
        if m.cursor + bytes.len() as u64 > m.end() {
            return Err(self.file.error(format!("more than the {} images announced", self.layout.count)));
        }
        self.file.file().write_all_at(bytes, m.cursor).map_err(|e| self.file.error(e))?;
        m.crc.update(bytes);
        m.cursor += bytes.len() as u64;
        Ok(())
    }

    /// The next images, RGB N×H×W×3, and their classes (one each when labelled, else none).
    pub fn append(&mut self, rgb: &[u8], labels: &[u32]) -> Result<()> {
        let per_image = self.layout.height * self.layout.width * 3;
        let count = rgb.len().checked_div(per_image).unwrap_or(0);
        if !rgb.len().is_multiple_of(per_image) || labels.len() != if self.layout.labelled { count } else { 0 } {
            return Err(self.file.error(format!("{} pixel bytes and {} labels are not whole images of this file", rgb.len(), labels.len())));
        }
        self.put(0, rgb)?;
        if self.layout.labelled {
            let bytes: Vec<u8> = labels.iter().flat_map(|&y| i64::from(y).to_le_bytes()).collect();
            self.put(1, &bytes)?;
        }
        Ok(())
    }

    /// Writes the CRCs, the central directory and the end records, and renames the file into
    /// place; refused unless every announced image was appended.
    pub fn finish(mut self) -> Result<()> {
        if let Some(m) = self.members.iter().find(|m| m.cursor != m.end()) {
            return Err(self.file.error(format!("{} is incomplete: {} bytes missing", m.name, m.end() - m.cursor)));
        }
        let force = self.layout.force_zip64;
        let central_at = self.members.last().map(Member::end).unwrap_or(0);
        let mut tail = Vec::new();
        for m in &self.members {
            let crc = m.crc.clone().finalize();
            self.file.file().write_all_at(&crc.to_le_bytes(), m.offset + 14).map_err(|e| self.file.error(e))?;
            tail.extend_from_slice(&m.central_header(crc, force));
        }
        let central_len = tail.len() as u64;
        let entries = self.members.len() as u64;
        let zip64_end = force || central_at >= ZIP32_LIMIT;
        if zip64_end {
            let end64_at = central_at + central_len;
            tail.extend_from_slice(&END64_SIG);
            tail.extend_from_slice(&44u64.to_le_bytes());
            tail.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // versions, disks
            for v in [entries, entries, central_len, central_at] {
                tail.extend_from_slice(&v.to_le_bytes());
            }
            tail.extend_from_slice(&LOCATOR64_SIG);
            tail.extend_from_slice(&0u32.to_le_bytes());
            tail.extend_from_slice(&end64_at.to_le_bytes());
            tail.extend_from_slice(&1u32.to_le_bytes());
        }
        tail.extend_from_slice(&END_SIG);
        tail.extend_from_slice(&[0, 0, 0, 0]);
        tail.extend_from_slice(&(entries as u16).to_le_bytes());
        tail.extend_from_slice(&(entries as u16).to_le_bytes());
        tail.extend_from_slice(&(central_len as u32).to_le_bytes());
        let central32 = if zip64_end { ZIP32_LIMIT as u32 } else { central_at as u32 };
        tail.extend_from_slice(&central32.to_le_bytes());
        tail.extend_from_slice(&(self.comment.len() as u16).to_le_bytes());
        tail.extend_from_slice(self.comment.as_bytes());
        self.file.file().write_all_at(&tail, central_at).map_err(|e| self.file.error(e))?;
        self.file.commit()
    }
}

/// A stored array of an .npz: dtype, shape and where its data starts.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub descr: String,
    pub shape: Vec<u64>,
    pub data_offset: u64,
}

/// An .npz read through its central directory (zip64 or not): members, the archive comment,
/// and reads of stored data at offsets.
pub struct NpzReader {
    file: File,
    path: PathBuf,
    /// The archive comment (ditrt's run key).
    pub comment: String,
    /// (name, offset of the local header, size) of every member.
    members: Vec<(String, u64, u64)>,
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl NpzReader {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |msg: &str| Error::File { path: path.to_path_buf(), msg: format!("not an .npz: {msg}") };
        let file = File::open(path).map_err(|e| Error::File { path: path.to_path_buf(), msg: format!("cannot read: {e}") })?;
        let len = file.metadata().map_err(|e| err(&e.to_string()))?.len();
        // The end record (22 bytes + a comment of at most 64 KiB) closes the file; the zip64
        // locator (20 bytes) and record (56) precede it.
        let tail_len = len.min(65535 + 22 + 76);
        let mut tail = vec![0u8; tail_len as usize];
        file.read_exact_at(&mut tail, len - tail_len).map_err(|e| err(&e.to_string()))?;
        let end = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&at| tail[at..].starts_with(&END_SIG) && at + 22 + u16_at(&tail, at + 20) as usize == tail.len())
            .ok_or_else(|| err("no zip end record"))?;
        let comment = String::from_utf8(tail[end + 22..].to_vec()).map_err(|_| err("comment is not UTF-8"))?;
        let (mut entries, mut central_len, mut central_at) = (u16_at(&tail, end + 10), u32_at(&tail, end + 12), u32_at(&tail, end + 16));
        if end >= 20 && tail[end - 20..].starts_with(&LOCATOR64_SIG) {
            let at = u64_at(&tail, end - 12);
            let mut record = [0u8; 56];
            file.read_exact_at(&mut record, at).map_err(|e| err(&e.to_string()))?;
            if !record.starts_with(&END64_SIG) {
                return Err(err("zip64 locator points at no zip64 end record"));
            }
            (entries, central_len, central_at) = (u64_at(&record, 32), u64_at(&record, 40), u64_at(&record, 48));
        }
        if central_at.checked_add(central_len).is_none_or(|end| end > len) {
            return Err(err("central directory lies beyond the end of the file"));
        }
        let mut central = vec![0u8; usize::try_from(central_len).map_err(|_| err("central directory too large"))?];
        file.read_exact_at(&mut central, central_at).map_err(|e| err(&e.to_string()))?;
        let mut members = Vec::new();
        let mut at = 0;
        for _ in 0..entries {
            if central.len() < at + 46 || !central[at..].starts_with(&CENTRAL_SIG) {
                return Err(err("damaged central directory"));
            }
            if u16_at(&central, at + 10) != 0 {
                return Err(err("compressed members (np.savez_compressed) are not supported"));
            }
            let (name_len, extra_len, comment_len) =
                (u16_at(&central, at + 28) as usize, u16_at(&central, at + 30) as usize, u16_at(&central, at + 32) as usize);
            if central.len() < at + 46 + name_len + extra_len + comment_len {
                return Err(err("damaged central directory"));
            }
            let name = String::from_utf8_lossy(&central[at + 46..at + 46 + name_len]).into_owned();
            let (mut size, mut compressed, mut offset) = (u32_at(&central, at + 24), u32_at(&central, at + 20), u32_at(&central, at + 42));
            // Zip64 extra: the 8-byte values of the fields that read 0xFFFFFFFF, in order.
            let extra = &central[at + 46 + name_len..at + 46 + name_len + extra_len];
            let mut e = 0;
            while e + 4 <= extra.len() {
                let (id, len) = (u16_at(extra, e), u16_at(extra, e + 2) as usize);
                if e + 4 + len > extra.len() {
                    return Err(err("damaged zip64 extra field"));
                }
                if id == 1 {
                    let mut field = e + 4;
                    for v in [&mut size, &mut compressed, &mut offset] {
                        if *v == ZIP32_LIMIT && field + 8 <= e + 4 + len {
                            *v = u64_at(extra, field);
                            field += 8;
                        }
                    }
                }
                e += 4 + len;
            }
            members.push((name, offset, size));
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(NpzReader { file, path: path.to_path_buf(), comment, members })
    }

    fn error(&self, msg: String) -> Error {
        Error::File { path: self.path.clone(), msg }
    }

    /// Member `name` (`arr_0`, `labels`) parsed as an .npy; None when absent.
    pub fn array(&self, name: &str) -> Result<Option<NpyArray>> {
        let Some((_, offset, size)) = self.members.iter().find(|(n, _, _)| n.strip_suffix(".npy") == Some(name)) else {
            return Ok(None);
        };
        let mut local = [0u8; 30];
        self.read_at(&mut local, *offset)?;
        let npy_at = offset + 30 + u16_at(&local, 26) + u16_at(&local, 28);
        let mut head = [0u8; 10];
        self.read_at(&mut head, npy_at)?;
        if !head.starts_with(b"\x93NUMPY\x01") {
            return Err(self.error(format!("{name} is not a version 1 .npy")));
        }
        let mut header = vec![0u8; u16_at(&head, 8) as usize];
        self.read_at(&mut header, npy_at + 10)?;
        let header = String::from_utf8_lossy(&header);
        let field = |key: &str| header.split(&format!("'{key}': ")).nth(1).map(str::to_string);
        let descr = field("descr").and_then(|d| d.split('\'').nth(1).map(str::to_string));
        let shape: Option<Vec<u64>> = field("shape").and_then(|s| {
            s.strip_prefix('(')?.split(')').next()?.split(',').filter(|d| !d.trim().is_empty()).map(|d| d.trim().parse().ok()).collect()
        });
        let (Some(descr), Some(shape)) = (descr, shape) else {
            return Err(self.error(format!("{name}: unreadable .npy header")));
        };
        // '|u1', '<i8': the item size closes the dtype.
        let item: u64 = descr.chars().last().and_then(|c| c.to_digit(10)).unwrap_or(0).into();
        let data = shape.iter().try_fold(item, |n, &d| n.checked_mul(d));
        if data.and_then(|d| d.checked_add(10 + header.len() as u64)) != Some(*size) {
            return Err(self.error(format!("{name}: shape {shape:?} of '{descr}' does not fill the member's {size} bytes")));
        }
        Ok(Some(NpyArray { descr, shape, data_offset: npy_at + 10 + header.len() as u64 }))
    }

    /// Fill `buf` from the file at `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| self.error(format!("cannot read: {e}")))
    }
}
