//! Cutting text into the pieces BPE merges within: first a raw prompt at its literal special
//! tokens (transformers' added-token split, before any cleaning), then cleaned text by CLIP's
//! pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//! (IGNORECASE, in Python's `regex` module). Characters no alternative matches are dropped.
//! Letters and numbers are the `regex` crate's Unicode tables: a character assigned after its
//! Unicode version (U+187FD and U+18D10 are letters to a 2026 Python `regex`) is "other" here.
use std::sync::LazyLock;

use regex::Regex;

use super::{BOS, EOS};

/// A special token's id, or text.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Special(u32),
    Text(&'a str),
}

const SPECIALS: [(&str, u32); 2] = [("<|startoftext|>", BOS), ("<|endoftext|>", EOS)];

/// `prompt` cut at each literal (case-sensitive) special token; empty text between is left out.
pub fn split_special(prompt: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = prompt;
    while let Some((at, token, id)) = SPECIALS.iter().filter_map(|&(t, id)| rest.find(t).map(|at| (at, t, id))).min() {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        out.push(Piece::Special(id));
        rest = &rest[at + token.len()..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// CLIP's pre-split pattern. Case-insensitive only where that matters, on the literals ("'ſ"
/// matches 's as in Python); Python's IGNORECASE leaves \p{L} as it is but takes U+0345 (a
/// combining mark that case-folds to a letter) out of the "other" class, so U+0345 matches nothing.
static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+").expect("pattern compiles")
});

/// The pieces of cleaned text: a special token only when the match is spelled exactly so (the
/// slow tokenizer's BPE cache holds the two); anything else is text for BPE.
pub fn split<'a>(text: &'a str) -> Vec<Piece<'a>> {
    let piece = |m: regex::Match<'a>| match SPECIALS.iter().find(|(t, _)| *t == m.as_str()) {
        Some(&(_, id)) => Piece::Special(id),
        None => Piece::Text(m.as_str()),
    };
    PATTERN.find_iter(text).map(piece).collect()
}
