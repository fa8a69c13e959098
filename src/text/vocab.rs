//! CLIP's vocabulary as its merges imply it (weights-tools/archs/clip_text/vocab.py is the
//! Python side): ids 0..256 are the byte symbols of GPT-2's byte -> printable character map in
//! CLIP's order (printable Latin-1 first), 256..512 the same ending a word ("</w>"), then one id
//! per merge in rank order, then <|startoftext|> and <|endoftext|>.
use std::collections::HashMap;

use crate::error::one_line;

use super::bpe;

/// The merges CLIP uses: 49408 ids = 2 x 256 byte symbols + merges + 2 special tokens.
pub const NUM_MERGES: usize = 48894;
/// `<|startoftext|>`, the first id after the merges.
pub const BOS: u32 = (2 * 256 + NUM_MERGES) as u32;

pub struct Vocab {
    /// The id of each byte's symbol; + 256 for the same symbol ending a word.
    byte_ids: [u32; 256],
    /// (left, right) symbol ids -> the merge's rank; the merged symbol's id is 512 + rank.
    ranks: HashMap<(u32, u32), u32>,
}

/// The bytes GPT-2's map keeps as their own Latin-1 character, in id order.
fn is_printable(byte: u8) -> bool {
    matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The symbols of the 256 bytes in id order: (byte, its character).
fn byte_symbols() -> Vec<(u8, char)> {
    let kept = (0..=255u8).filter(|&b| is_printable(b)).map(|b| (b, char::from(b)));
    let moved = (0..=255u8).filter(|&b| !is_printable(b)).zip(256u32..).map(|(b, c)| (b, char::from_u32(c).expect("below U+0200")));
    kept.chain(moved).collect()
}

impl Vocab {
    /// The first NUM_MERGES lines of `text`, each "a b": every symbol a byte symbol or an earlier
    /// merge's result, every result new. Errors are one line, without the file's name.
    pub fn from_merges(text: &str) -> Result<Self, String> {
        let mut ids: HashMap<String, u32> = HashMap::with_capacity(BOS as usize);
        let mut byte_ids = [0u32; 256];
        for (id, (byte, c)) in (0u32..).zip(byte_symbols()) {
            byte_ids[byte as usize] = id;
            ids.insert(c.to_string(), id);
            ids.insert(format!("{c}</w>"), id + 256);
        }
        let mut ranks = HashMap::with_capacity(NUM_MERGES);
        let mut lines = text.lines();
        for rank in 0..NUM_MERGES as u32 {
            let n = rank + 1;
            let line = lines.next().ok_or_else(|| format!("{rank} merges, CLIP's vocabulary needs {NUM_MERGES}"))?;
            let quoted: String = one_line(line).chars().take(60).collect();
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [a, b] = parts[..] else { return Err(format!("line {n} is not a merge of two symbols: '{quoted}'")) };
            let id = |s: &str| {
                ids.get(s)
                    .copied()
                    .ok_or_else(|| format!("line {n} ('{quoted}'): '{}' is neither a byte symbol nor an earlier merge's result", one_line(s)))
            };
            let pair = (id(a)?, id(b)?);
            let merged = format!("{a}{b}");
            if ids.contains_key(&merged) {
                return Err(format!("line {n} ('{quoted}'): makes '{}', a symbol already", one_line(&merged)));
            }
            ids.insert(merged, 2 * 256 + rank);
            ranks.insert(pair, rank);
        }
        Ok(Vocab { byte_ids, ranks })
    }

    /// Appends the ids of one piece of cleaned text: its UTF-8 bytes as symbols, the last
    /// ending the word, merged by rank.
    pub fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<u32> = piece.bytes().map(|b| self.byte_ids[b as usize]).collect();
        if let Some(last) = symbols.last_mut() {
            *last += 256;
        }
        bpe::merge(&mut symbols, |a, b| self.ranks.get(&(a, b)).map(|&rank| (rank, 2 * 256 + rank)));
        out.extend_from_slice(&symbols);
    }
}
