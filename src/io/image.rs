//! Samples to pictures: uint8 conversion, PNG files and labelled PNG grids (.npz: `npz`).
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::atomic::write_atomically;

/// A batch of uint8 images, N×H×W×C (C = 1 or 3), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

impl Images {
    /// From model-space samples [N, C, H, W] in [-1, 1]: clamp(127.5 x + 128) truncated to
    /// uint8, as DiT's sample_ddp.py does.
    pub fn from_samples(x: &[f32], count: usize, channels: usize, height: usize, width: usize) -> Images {
        let mut pixels = vec![0u8; count * height * width * channels];
        for n in 0..count {
            for c in 0..channels {
                for i in 0..height * width {
                    let v = x[(n * channels + c) * height * width + i];
                    pixels[(n * height * width + i) * channels + c] = (127.5 * v + 128.0).clamp(0.0, 255.0) as u8;
                }
            }
        }
        Images { count, height, width, channels, pixels }
    }

    /// Pixel (y, x) of image n as RGB.
    fn rgb(&self, n: usize, y: usize, x: usize) -> [u8; 3] {
        let i = ((n * self.height + y) * self.width + x) * self.channels;
        if self.channels == 1 {
            [self.pixels[i]; 3]
        } else {
            [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
        }
    }

    /// The images as N×H×W×3 (grey replicated).
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.count * self.height * self.width * 3);
        for n in 0..self.count {
            for y in 0..self.height {
                for x in 0..self.width {
                    out.extend(self.rgb(n, y, x));
                }
            }
        }
        out
    }

    pub fn concat(parts: &[Images]) -> Result<Images> {
        let first = parts.first().ok_or_else(|| Error::invalid("no images to concatenate"))?;
        let mut all = Images { pixels: Vec::new(), count: 0, ..*first };
        for p in parts {
            if (p.height, p.width, p.channels) != (first.height, first.width, first.channels) {
                return Err(Error::invalid("images of different sizes cannot be concatenated"));
            }
            all.count += p.count;
            all.pixels.extend_from_slice(&p.pixels);
        }
        Ok(all)
    }
}

/// 3×5 glyphs for labels (class ids, prompts): digits, letters (lower case drawn as upper
/// case), common punctuation and ' '; one row of 3 bits per line. Other characters draw as '?'.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        '-' => [0, 0, 7, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '\'' | '"' => [2, 2, 0, 0, 0],
        '!' => [2, 2, 2, 0, 2],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        '+' => [0, 2, 7, 2, 0],
        ' ' => [0; 5],
        _ => [7, 1, 3, 0, 2],
    }
}

/// `label` cut to `max` characters, its end marked "..." when cut.
fn fit_label(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let kept: String = label.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...").chars().take(max).collect()
}

/// Layout of a labelled grid.
struct Grid {
    scale: usize,
    text_scale: usize,
    label_h: usize,
    pad: usize,
    cols: usize,
}

impl Grid {
    fn cell_w(&self, img_w: usize) -> usize {
        img_w * self.scale + self.pad
    }
    fn cell_h(&self, img_h: usize) -> usize {
        img_h * self.scale + self.label_h + self.pad
    }
}

/// A white-background grid, `cols` images per row, each upscaled (nearest) so its short side is
/// at least 64 px, with its label drawn above it; a label wider than its cell runs on over the
/// next cells' (empty) label space to the grid's edge, and is cut there with "...".
pub fn render_grid(images: &Images, labels: &[String], cols: usize) -> (usize, usize, Vec<u8>) {
    let scale = 64usize.div_ceil(images.height.min(images.width)).max(1);
    let text_scale = 2;
    let g = Grid { scale, text_scale, label_h: 7 * text_scale, pad: 4, cols: cols.clamp(1, images.count.max(1)) };
    let rows = images.count.div_ceil(g.cols);
    let (w, h) = (g.cols * g.cell_w(images.width) + g.pad, rows * g.cell_h(images.height) + g.pad);
    let mut rgb = vec![255u8; w * h * 3];
    for n in 0..images.count {
        let (x0, y0) = (g.pad + (n % g.cols) * g.cell_w(images.width), g.pad + (n / g.cols) * g.cell_h(images.height));
        let label = fit_label(labels.get(n).map(String::as_str).unwrap_or(""), (w - x0) / (4 * g.text_scale));
        for (k, ch) in label.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for dy in 0..g.text_scale {
                            for dx in 0..g.text_scale {
                                let (px, py) = (x0 + (k * 4 + col) * g.text_scale + dx, y0 + row * g.text_scale + dy);
                                if px < w {
                                    rgb[(py * w + px) * 3..][..3].copy_from_slice(&[0, 0, 0]);
                                }
                            }
                        }
                    }
                }
            }
        }
        for y in 0..images.height * g.scale {
            for x in 0..images.width * g.scale {
                let (px, py) = (x0 + x, y0 + g.label_h + y);
                rgb[(py * w + px) * 3..][..3].copy_from_slice(&images.rgb(n, y / g.scale, x / g.scale));
            }
        }
    }
    (w, h, rgb)
}

/// PNG text key under which `write_png` stores its run key.
const PNG_RUN_KEY: &str = "ditrt.run";

/// Write an RGB8 PNG atomically; `run_key` (what made it, see `read_run_key`) goes into a tEXt
/// chunk.
pub fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8], run_key: &str) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let err = |e: png::EncodingError| Error::File { path: path.to_path_buf(), msg: format!("PNG encoding: {e}") };
        enc.add_text_chunk(PNG_RUN_KEY.into(), run_key.into()).map_err(err)?;
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgb).map_err(err)?;
    }
    write_atomically(path, &bytes)
}

/// The run key a finished `write_png` output carries; None when `path` is missing, unreadable
/// or not such a file. Outputs are renamed into place only when complete, so a file with a key
/// is a whole one.
pub fn read_png_run_key(path: &Path) -> Option<String> {
    // Text chunks precede the image data: only the head is read.
    let file = std::fs::File::open(path).ok()?;
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().ok()?;
    let text = &reader.info().uncompressed_latin1_text;
    text.iter().find(|t| t.keyword == PNG_RUN_KEY).map(|t| t.text.clone())
}
