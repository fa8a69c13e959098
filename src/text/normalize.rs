//! CLIP's text cleaning as the slow tokenizer does it: `whitespace_clean(ftfy.fix_text(text)).lower()`,
//! whitespace being Unicode White_Space (the `regex` module's `\s`).
use super::ftfy;

/// The cleaned text: ftfy's repairs (ftfy.rs), whitespace runs collapsed to one space and the
/// ends trimmed, then lowercase (full case mapping, final sigma included, as Python's lower()).
pub fn clean(text: &str) -> String {
    ftfy::fix_text(text).split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
