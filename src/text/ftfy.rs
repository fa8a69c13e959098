//! The part of ftfy 6.3's `fix_text` (default settings, as the slow CLIPTokenizer calls it) that
//! prompts meet, in ftfy's order:
//!
//! - HTML entities (`unescape_html="auto"`, html_entities.rs): skipped from the first line that
//!   holds a `<` to the end of the text, as ftfy's segment loop does;
//! - C1 controls U+0080..U+009F read as Windows-1252 (`fix_c1_controls`);
//! - Latin ligatures split (`fix_latin_ligatures`: ĳ ŉ Ǆ..ǌ Ǳ..ǳ ﬀ..ﬆ);
//! - fullwidth and halfwidth forms to standard width (`fix_character_width`: U+3000 to a space,
//!   U+FF01..U+FFEF to their NFKC form);
//! - curly quotes straightened (`uncurl_quotes`: U+02BC, U+2018..U+201B to ', U+201C..U+201F to ");
//! - line breaks (`fix_line_breaks`: CRLF, CR, U+2028, U+2029, U+0085 to \n);
//! - ANSI terminal escapes removed (`remove_terminal_escapes`);
//! - control characters removed (`remove_control_chars`: U+0000..U+0008, U+000B, U+000E..U+001F,
//!   U+007F, U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC);
//! - NFC normalization;
//!
//! each line (up to and including its \n) repeated until a pass changes nothing, as ftfy does.
//!
//! Not done: mojibake repair (`fix_encoding`, "cafÃ©" -> "café": ftfy's statistical guess at a
//! wrong decoding; such text is tokenized as written), `fix_surrogates` (a Rust string holds no
//! surrogates), HTML5-only entity names (html_entities.rs), and ftfy's cut of lines longer than
//! 1,000,000 characters (here a line is one segment however long). Character tables are this
//! build's Unicode version, Python 3.11's being 14.0: characters assigned since may differ.
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use super::{cp1252, html_entities};

/// ftfy.fix_text(text).
pub fn fix_text(text: &str) -> String {
    let mut unescape = true;
    text.split_inclusive('\n')
        .map(|line| {
            unescape &= !line.contains('<');
            let mut text = line.to_string();
            loop {
                let fixed = fix_once(&text, unescape);
                if fixed == text {
                    return fixed;
                }
                text = fixed;
            }
        })
        .collect()
}

/// One pass of every fixer, in ftfy's order.
fn fix_once(text: &str, unescape: bool) -> String {
    let text = if unescape { html_entities::unescape(text) } else { text.to_string() };
    let text: String = text.chars().map(cp1252::from_c1).flat_map(split_ligature).flat_map(standard_width).map(uncurl).collect();
    let text = text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
    static TERMINAL_ESCAPE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\x1b\[[\d;]*[a-zA-Z]").expect("pattern compiles"));
    let text = TERMINAL_ESCAPE.replace_all(&text, "");
    text.chars().filter(|&c| !is_removed_control(c)).nfc().collect()
}

/// ftfy's LIGATURES: the letters of a Latin ligature.
fn split_ligature(c: char) -> Vec<char> {
    let letters = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "\u{2bc}n",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return vec![c],
    };
    letters.chars().collect()
}

/// ftfy's WIDTH_MAP: the ideographic space and the halfwidth and fullwidth forms.
fn standard_width(c: char) -> Vec<char> {
    match c {
        '\u{3000}' => vec![' '],
        '\u{ff01}'..='\u{ffef}' => std::iter::once(c).nfkc().collect(),
        _ => vec![c],
    }
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

fn is_removed_control(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}' | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
}
