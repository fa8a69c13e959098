//! Windows-1252 for the C1 range: what ftfy (fix_c1_controls) and Python's html.unescape (for
//! `&#128;`..`&#159;`) turn U+0080..U+009F into. The five bytes Windows-1252 leaves undefined
//! stay as they are (ftfy's "sloppy" codec).
const C1: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}',
    '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// `c` read as a Windows-1252 byte when it is a C1 control; any other character unchanged.
pub fn from_c1(c: char) -> char {
    match c {
        '\u{80}'..='\u{9f}' => C1[c as usize - 0x80],
        _ => c,
    }
}
