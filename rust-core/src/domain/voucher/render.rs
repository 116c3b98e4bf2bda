//! Drawing a code: the QR module matrix (error correction M) that the shells draw natively,
//! an SVG, and Unicode half blocks for the terminal.

use qrcode::{Color, EcLevel, Version};

use super::qr_mask::Unmasked;
use super::VoucherError;

/// A QR code as modules, row-major, `true` = dark. No quiet zone: drawers add four modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    /// QR version (1..=40).
    pub version: u8,
    /// Modules per side.
    pub size: u32,
    pub modules: Vec<bool>,
}

impl QrMatrix {
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        x < self.size && y < self.size && self.modules[(y * self.size + x) as usize]
    }
}

/// Encodes `text` at error-correction level M in the smallest version (the encoder picks
/// alphanumeric mode for base45 text), with the mask the standard's penalty rules choose
/// (`qr_mask`: scored on bit-packed rows and columns, then drawn by the crate with that mask).
pub fn encode_qr(text: &str) -> Result<QrMatrix, VoucherError> {
    let symbol = Unmasked::encode(text.as_bytes(), EcLevel::M).map_err(|e| VoucherError::Render(e.to_string()))?;
    let version = match symbol.version() {
        Version::Normal(v) => u8::try_from(v).map_err(|_| VoucherError::Render("QR version out of range".into()))?,
        Version::Micro(_) => return Err(VoucherError::Render("micro QR is not used".into())),
    };
    let size = u32::try_from(symbol.width()).map_err(|_| VoucherError::Render("QR width out of range".into()))?;
    let mask = symbol.best_mask();
    let modules = symbol.into_colors(mask).into_iter().map(|c| c == Color::Dark).collect();
    Ok(QrMatrix { version, size, modules })
}

/// An SVG of the matrix with a four-module quiet zone, `module_px` pixels a module.
pub fn to_svg(qr: &QrMatrix, module_px: u32) -> String {
    let quiet = 4;
    let side = (qr.size + 2 * quiet) * module_px.max(1);
    let m = module_px.max(1);
    let mut path = String::new();
    for y in 0..qr.size {
        for x in 0..qr.size {
            if qr.is_dark(x, y) {
                path.push_str(&format!("M{},{}h{m}v{m}h-{m}z", (x + quiet) * m, (y + quiet) * m));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{side}\" height=\"{side}\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

/// The matrix as terminal text: two module rows per line with half blocks, dark modules
/// drawn dark on a light background, with a two-module quiet zone.
pub fn to_terminal(qr: &QrMatrix) -> String {
    let quiet = 2i64;
    let size = qr.size as i64;
    let dark = |x: i64, y: i64| x >= 0 && y >= 0 && qr.is_dark(x as u32, y as u32);
    let mut out = String::new();
    let mut y = -quiet;
    while y < size + quiet {
        for x in -quiet..size + quiet {
            // Light modules are printed as block characters (the terminal's light), so the
            // code reads the right way round on dark-background terminals.
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (false, true) => '▀',
                (true, false) => '▄',
                (true, true) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

/// The matrix as terminal text with sextant blocks (Unicode 13 "Symbols for Legacy
/// Computing", U+1FB00–U+1FB3B, with ▌ ▐ █ and space for the four patterns that have older
/// characters): 2×3 modules per character, so a code takes half the columns and a third of
/// the lines of one module per column (a version-10 offline code fits an 80×24 terminal).
/// Terminal cells are about twice as tall as wide, so a module is drawn about 3:4 — close to
/// square. Light modules are the block's ink, as in [`to_terminal`].
pub fn to_terminal_sextants(qr: &QrMatrix) -> String {
    let quiet = 2i64;
    let size = qr.size as i64;
    let light = |x: i64, y: i64| !(x >= 0 && y >= 0 && x < size && y < size && qr.is_dark(x as u32, y as u32));
    let mut out = String::new();
    let mut y = -quiet;
    while y < size + quiet {
        let mut x = -quiet;
        while x < size + quiet {
            // Bits 0..5: top-left, top-right, middle-left, middle-right, bottom-left,
            // bottom-right light.
            let mut bits = 0u32;
            for (i, (dx, dy)) in [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)].into_iter().enumerate() {
                if light(x + dx, y + dy) {
                    bits |= 1 << i;
                }
            }
            out.push(sextant(bits));
            x += 2;
        }
        out.push('\n');
        y += 3;
    }
    out
}

/// The character for a sextant pattern (bit i set: cell i lit, in reading order).
fn sextant(bits: u32) -> char {
    match bits {
        0 => ' ',
        21 => '▌',
        42 => '▐',
        63 => '█',
        // U+1FB00 is pattern 1; the block skips the patterns 21 and 42.
        n => char::from_u32(0x1FB00 + n - 1 - u32::from(n > 21) - u32::from(n > 42)).unwrap_or('?'),
    }
}

/// The densest rendering a terminal of `columns` × `lines` needs, leaving `reserved_lines`
/// for text below: half blocks when they fit (square modules, and every terminal font has
/// them), else sextant blocks, else `None` (the terminal is too small for this code).
pub fn fit_terminal(qr: &QrMatrix, columns: u32, lines: u32, reserved_lines: u32) -> Option<String> {
    let side = qr.size + 4;
    let usable = lines.saturating_sub(reserved_lines);
    if side <= columns && side.div_ceil(2) <= usable {
        return Some(to_terminal(qr));
    }
    if side.div_ceil(2) <= columns && side.div_ceil(3) <= usable {
        return Some(to_terminal_sextants(qr));
    }
    None
}

/// The smallest terminal (`columns`, `lines`) [`fit_terminal`] can draw `qr` in.
pub fn smallest_terminal(qr: &QrMatrix, reserved_lines: u32) -> (u32, u32) {
    let side = qr.size + 4;
    (side.div_ceil(2), side.div_ceil(3) + reserved_lines)
}

/// A grayscale bitmap of the matrix (`module_px` pixels a module, four-module quiet zone):
/// `(side, pixels)` with 0 = black, 255 = white.
pub fn to_bitmap(qr: &QrMatrix, module_px: u32) -> (u32, Vec<u8>) {
    let quiet = 4;
    let m = module_px.max(1);
    let side = (qr.size + 2 * quiet) * m;
    let mut pixels = vec![255u8; (side * side) as usize];
    for y in 0..qr.size {
        for x in 0..qr.size {
            if qr.is_dark(x, y) {
                for dy in 0..m {
                    let row = ((y + quiet) * m + dy) * side;
                    for dx in 0..m {
                        pixels[(row + (x + quiet) * m + dx) as usize] = 0;
                    }
                }
            }
        }
    }
    (side, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_size_follows_the_version() {
        let qr = encode_qr("CP1:HELLO").unwrap();
        assert_eq!(qr.size, 17 + 4 * qr.version as u32);
        assert_eq!(qr.modules.len(), (qr.size * qr.size) as usize);
        // Finder pattern corners are dark.
        assert!(qr.is_dark(0, 0) && qr.is_dark(qr.size - 1, 0) && qr.is_dark(0, qr.size - 1));
    }

    #[test]
    fn svg_and_bitmap_have_the_quiet_zone() {
        let qr = encode_qr("CP1:HELLO").unwrap();
        let svg = to_svg(&qr, 4);
        assert!(svg.starts_with("<svg") && svg.contains("M16,16h4v4h-4z"));
        let (side, pixels) = to_bitmap(&qr, 3);
        assert_eq!(side, (qr.size + 8) * 3);
        assert_eq!(pixels[0], 255);
        assert_eq!(pixels[(12 * side + 12) as usize], 0);
        let text = to_terminal(&qr);
        assert_eq!(text.lines().count(), ((qr.size + 4) as usize).div_ceil(2));
        let dense = to_terminal_sextants(&qr);
        assert_eq!(dense.lines().count(), ((qr.size + 4) as usize).div_ceil(3));
        assert!(dense.lines().all(|l| l.chars().count() == ((qr.size + 4) as usize).div_ceil(2)));
        // The top-left corner is all quiet zone; the next cell down holds the finder's corner.
        assert_eq!(dense.chars().next(), Some('█'));
    }

    #[test]
    fn the_rendering_fits_the_terminal_or_says_it_cannot() {
        let qr = encode_qr(&"A".repeat(280)).unwrap();
        assert!(qr.size >= 57, "version 10 or more: {}", qr.size);
        let fitted = fit_terminal(&qr, 80, 24, 1).expect("fits 80x24");
        assert!(fitted.lines().count() <= 23 && fitted.lines().all(|l| l.chars().count() <= 80));
        assert_eq!(fitted, to_terminal_sextants(&qr));
        assert_eq!(fit_terminal(&qr, 120, 40, 1), Some(to_terminal(&qr)));
        assert_eq!(fit_terminal(&qr, 20, 10, 1), None);
        let (c, l) = smallest_terminal(&qr, 1);
        assert!(fit_terminal(&qr, c, l, 1).is_some() && fit_terminal(&qr, c - 1, l, 1).is_none());
        // Every sextant pattern maps to its own character.
        let chars: std::collections::HashSet<char> = (0..64).map(sextant).collect();
        assert_eq!(chars.len(), 64);
        assert_eq!(sextant(1), '\u{1FB00}');
        assert_eq!(sextant(62), '\u{1FB3B}');
    }
}
