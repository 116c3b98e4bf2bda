//! The QR data-mask choice of ISO/IEC 18004 (§7.8.3, the four penalty rules), computed fast:
//! the symbol is drawn once through the `qrcode` crate's canvas (function patterns, data and
//! error correction), each of the eight masks is scored on bit-packed rows and columns, and the
//! crate then draws the symbol with the one mask chosen.
//!
//! The crate's own `Canvas::apply_best_mask` clones and masks eight canvases and scores them
//! module by module (about 1 ms for a version 6 symbol); it also scores the dark proportion
//! linearly (2 points per 1 % off 50 %) where the standard counts whole 5 % steps (10 points
//! each), so the two choices can differ. This module follows the standard:
//!
//! - N1: a run of `5 + i` same-colour modules in a row or column scores `3 + i`;
//! - N2: every 2×2 block of one colour (blocks may overlap) scores 3;
//! - N3: every dark-light-dark-dark-dark-light-dark (1:1:3:1:1) run of modules in a row or
//!   column with four light modules before it or after it scores 40, once per occurrence; the
//!   area outside the symbol is its quiet zone and counts as light;
//! - N4: `10 × k` where the dark proportion is between `50 ± 5k %` and `50 ± 5(k + 1) %`;
//!
//! over the whole symbol as it will be printed: function patterns, the format information for
//! that mask (which the standard's evaluation includes), the version information. Ties go to
//! the lowest mask number. Pure: depends only on the `qrcode` crate and `std`.

use std::ops::{BitAnd, BitOr, BitXor, Not, Shl, Shr};

use qrcode::bits::{encode_auto, Bits};
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::ec::construct_codewords;
use qrcode::types::{Color, EcLevel, QrError, QrResult, Version};

/// The eight masks, in the order of their numbers (000 to 111).
pub const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Penalty weights of the standard's mask-scoring table.
pub const N1: u32 = 3;
pub const N2: u32 = 3;
pub const N3: u32 = 40;
pub const N4: u32 = 10;

/// The widest symbol (version 40) in modules.
const MAX_WIDTH: usize = 177;

/// The penalty of one mask, rule by rule (points, weights included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Penalty {
    /// N1: runs of five or more same-colour modules.
    pub runs: u32,
    /// N2: 2×2 blocks of one colour.
    pub blocks: u32,
    /// N3: finder-like patterns.
    pub finder_like: u32,
    /// N4: dark proportion away from 50 %.
    pub balance: u32,
}

impl Penalty {
    pub fn total(&self) -> u32 {
        self.runs + self.blocks + self.finder_like + self.balance
    }
}

/// A QR symbol drawn up to masking: function patterns (format information reserved, light),
/// data and error correction codewords.
#[derive(Clone)]
pub struct Unmasked {
    version: Version,
    ec_level: EcLevel,
    canvas: Canvas,
}

impl Unmasked {
    /// Encodes `data` in the smallest (normal, not micro) version at `ec_level`, the way
    /// `qrcode::QrCode::with_error_correction_level` does up to the mask.
    pub fn encode(data: &[u8], ec_level: EcLevel) -> QrResult<Unmasked> {
        Unmasked::from_bits(encode_auto(data, ec_level)?, ec_level)
    }

    /// Draws already encoded bits (as `qrcode::QrCode::with_bits` does up to the mask). Micro
    /// QR versions are refused.
    pub fn from_bits(bits: Bits, ec_level: EcLevel) -> QrResult<Unmasked> {
        let version = bits.version();
        if version.is_micro() {
            return Err(QrError::InvalidVersion);
        }
        let data = bits.into_bytes();
        let (data_codewords, ec_codewords) = construct_codewords(&data, version, ec_level)?;
        let mut canvas = Canvas::new(version, ec_level);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data_codewords, &ec_codewords);
        Ok(Unmasked { version, ec_level, canvas })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn ec_level(&self) -> EcLevel {
        self.ec_level
    }

    /// Modules per side.
    pub fn width(&self) -> usize {
        usize::try_from(self.version.width()).unwrap_or(0)
    }

    /// The penalty of each mask, indexed by mask number.
    pub fn penalties(&self) -> [Penalty; 8] {
        let width = self.width();
        if width <= 64 {
            score_masks::<u64>(&self.canvas, width, self.ec_level)
        } else if width <= 128 {
            score_masks::<u128>(&self.canvas, width, self.ec_level)
        } else {
            score_masks::<Wide>(&self.canvas, width, self.ec_level)
        }
    }

    /// The mask with the lowest total penalty; the lowest mask number on a tie.
    pub fn best_mask(&self) -> MaskPattern {
        let penalties = self.penalties();
        let mut best = 0;
        for (m, p) in penalties.iter().enumerate() {
            if p.total() < penalties[best].total() {
                best = m;
            }
        }
        MASKS[best]
    }

    /// The crate draws the symbol with `mask` (and its format information): modules row-major.
    pub fn into_colors(self, mask: MaskPattern) -> Vec<Color> {
        let mut canvas = self.canvas;
        canvas.apply_mask(mask);
        canvas.into_colors()
    }

    /// Every mask's symbol as this module's scorer sees it: `[mask][y][x]`, dark = true, read
    /// from the rows; the columns are checked to hold the same modules.
    #[cfg(test)]
    fn scored_symbols(&self) -> Vec<Vec<Vec<bool>>> {
        let width = self.width();
        let planes = Planes::<Wide>::read(&self.canvas, width);
        let (mut rows, mut cols) = (vec![Wide::ZERO; width], vec![Wide::ZERO; width]);
        let is_set = |lane: Wide, i: usize| (lane & Wide::bit(i as u32)).count() == 1;
        (0..8)
            .map(|m| {
                planes.mask_into(m, self.ec_level, &mut rows, &mut cols);
                let symbol: Vec<Vec<bool>> = rows.iter().map(|r| (0..width).map(|x| is_set(*r, x)).collect()).collect();
                for (x, col) in cols.iter().enumerate() {
                    for (y, row) in symbol.iter().enumerate() {
                        assert_eq!(is_set(*col, y), row[x], "mask {m}: rows and columns disagree at ({x}, {y})");
                    }
                }
                symbol
            })
            .collect()
    }
}

/// The number of a mask (0 to 7).
pub fn mask_number(mask: MaskPattern) -> u8 {
    mask as u8
}

// ---------------------------------------------------------------------------------------------
// Bit lanes: one row or column of the symbol, bit `i` = module `i`, 1 = dark.

trait Lane:
    Copy
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Not<Output = Self>
    + Shl<u32, Output = Self>
    + Shr<u32, Output = Self>
{
    const ZERO: Self;
    /// Bits 0–63, 64–127 and 128–191.
    fn from_words(words: [u64; 3]) -> Self;
    fn bit(i: u32) -> Self;
    /// Bits `0..n` set.
    fn low(n: u32) -> Self;
    fn count(self) -> u32;
}

impl Lane for u64 {
    const ZERO: Self = 0;
    fn from_words(words: [u64; 3]) -> Self {
        words[0]
    }
    fn bit(i: u32) -> Self {
        1 << i
    }
    fn low(n: u32) -> Self {
        if n >= 64 {
            u64::MAX
        } else {
            (1 << n) - 1
        }
    }
    fn count(self) -> u32 {
        self.count_ones()
    }
}

impl Lane for u128 {
    const ZERO: Self = 0;
    fn from_words(words: [u64; 3]) -> Self {
        u128::from(words[0]) | u128::from(words[1]) << 64
    }
    fn bit(i: u32) -> Self {
        1 << i
    }
    fn low(n: u32) -> Self {
        if n >= 128 {
            u128::MAX
        } else {
            (1 << n) - 1
        }
    }
    fn count(self) -> u32 {
        self.count_ones()
    }
}

/// 192 bits, for versions 28 to 40 (widths 129 to 177).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide([u64; 3]);

impl BitAnd for Wide {
    type Output = Wide;
    fn bitand(self, o: Wide) -> Wide {
        Wide([self.0[0] & o.0[0], self.0[1] & o.0[1], self.0[2] & o.0[2]])
    }
}

impl BitOr for Wide {
    type Output = Wide;
    fn bitor(self, o: Wide) -> Wide {
        Wide([self.0[0] | o.0[0], self.0[1] | o.0[1], self.0[2] | o.0[2]])
    }
}

impl BitXor for Wide {
    type Output = Wide;
    fn bitxor(self, o: Wide) -> Wide {
        Wide([self.0[0] ^ o.0[0], self.0[1] ^ o.0[1], self.0[2] ^ o.0[2]])
    }
}

impl Not for Wide {
    type Output = Wide;
    fn not(self) -> Wide {
        Wide([!self.0[0], !self.0[1], !self.0[2]])
    }
}

impl Shr<u32> for Wide {
    type Output = Wide;
    /// Towards bit 0: bit `i` of the result is bit `i + k` of `self`.
    fn shr(self, k: u32) -> Wide {
        let (words, bits) = ((k / 64) as usize, k % 64);
        let mut out = [0u64; 3];
        for (i, slot) in out.iter_mut().enumerate() {
            let src = i + words;
            if src < 3 {
                let mut v = self.0[src] >> bits;
                if bits > 0 && src + 1 < 3 {
                    v |= self.0[src + 1] << (64 - bits);
                }
                *slot = v;
            }
        }
        Wide(out)
    }
}

impl Shl<u32> for Wide {
    type Output = Wide;
    /// Away from bit 0: bit `i` of the result is bit `i − k` of `self`.
    fn shl(self, k: u32) -> Wide {
        let (words, bits) = ((k / 64) as usize, k % 64);
        let mut out = [0u64; 3];
        for (i, slot) in out.iter_mut().enumerate() {
            if i >= words {
                let src = i - words;
                let mut v = self.0[src] << bits;
                if bits > 0 && src >= 1 {
                    v |= self.0[src - 1] >> (64 - bits);
                }
                *slot = v;
            }
        }
        Wide(out)
    }
}

impl Lane for Wide {
    const ZERO: Self = Wide([0; 3]);
    fn from_words(words: [u64; 3]) -> Self {
        Wide(words)
    }
    fn bit(i: u32) -> Self {
        let mut w = [0u64; 3];
        if let Some(slot) = w.get_mut((i / 64) as usize) {
            *slot = 1 << (i % 64);
        }
        Wide(w)
    }
    fn low(n: u32) -> Self {
        let mut w = [0u64; 3];
        for (i, slot) in w.iter_mut().enumerate() {
            let from = 64 * i as u32;
            *slot = if n >= from + 64 {
                u64::MAX
            } else if n > from {
                (1 << (n - from)) - 1
            } else {
                0
            };
        }
        Wide(w)
    }
    fn count(self) -> u32 {
        self.0[0].count_ones() + self.0[1].count_ones() + self.0[2].count_ones()
    }
}

// ---------------------------------------------------------------------------------------------
// Mask bitplanes, computed at compile time.

/// Whether mask `mask` inverts the module in column `x`, row `y` (ISO/IEC 18004 Table 10,
/// with i = row, j = column).
const fn mask_inverts(mask: usize, x: usize, y: usize) -> bool {
    match mask {
        0 => (x + y).is_multiple_of(2),
        1 => y.is_multiple_of(2),
        2 => x.is_multiple_of(3),
        3 => (x + y).is_multiple_of(3),
        4 => (y / 2 + x / 3).is_multiple_of(2),
        5 => (x * y) % 2 + (x * y) % 3 == 0,
        6 => ((x * y) % 2 + (x * y) % 3).is_multiple_of(2),
        _ => ((x + y) % 2 + (x * y) % 3).is_multiple_of(2),
    }
}

/// Every mask repeats every 12 rows and every 6 columns.
const ROW_PERIOD: usize = 12;
const COL_PERIOD: usize = 6;

/// `ROW_MASKS[m][y % 12]`: bit `x` set when mask `m` inverts (x, y), for x in 0..192.
static ROW_MASKS: [[[u64; 3]; ROW_PERIOD]; 8] = mask_table::<ROW_PERIOD>(true);
/// `COL_MASKS[m][x % 6]`: bit `y` set when mask `m` inverts (x, y), for y in 0..192.
static COL_MASKS: [[[u64; 3]; COL_PERIOD]; 8] = mask_table::<COL_PERIOD>(false);

const fn mask_table<const P: usize>(by_row: bool) -> [[[u64; 3]; P]; 8] {
    let mut table = [[[0u64; 3]; P]; 8];
    let mut m = 0;
    while m < 8 {
        let mut line = 0;
        while line < P {
            let mut i = 0;
            while i < 192 {
                let (x, y) = if by_row { (i, line) } else { (line, i) };
                if mask_inverts(m, x, y) {
                    table[m][line][i / 64] |= 1 << (i % 64);
                }
                i += 1;
            }
            line += 1;
        }
        m += 1;
    }
    table
}

// ---------------------------------------------------------------------------------------------
// Format information (ISO/IEC 18004 §7.9).

/// The 15 format bits for `ec_level` and mask number `mask`: five data bits, ten BCH(15,5)
/// check bits (generator x¹⁰+x⁸+x⁵+x⁴+x²+x+1), XOR 101010000010010.
fn format_bits(ec_level: EcLevel, mask: usize) -> u32 {
    let ec = match ec_level {
        EcLevel::L => 0b01,
        EcLevel::M => 0b00,
        EcLevel::Q => 0b11,
        EcLevel::H => 0b10,
    };
    let data = (ec << 3 | mask as u32) & 0b11111;
    let mut rem = data << 10;
    for degree in (10..15).rev() {
        if rem & (1 << degree) != 0 {
            rem ^= 0b101_0011_0111 << (degree - 10);
        }
    }
    ((data << 10) | rem) ^ 0b101_0100_0001_0010
}

/// Where format bit `i` (0 = least significant) goes: the copy around the top-left finder
/// and the copy split between the other two, as `(x, y)`.
fn format_positions(width: usize, i: usize) -> [(usize, usize); 2] {
    let first = match i {
        0..=5 => (8, i),
        6 => (8, 7),
        7 => (8, 8),
        8 => (7, 8),
        _ => (14 - i, 8),
    };
    let second = if i < 8 { (width - 1 - i, 8) } else { (8, width - 15 + i) };
    [first, second]
}

// ---------------------------------------------------------------------------------------------
// Scoring.

/// The unmasked symbol as bit lanes: colours as drawn so far and which modules a mask inverts
/// (the data and error correction modules, remainder bits included), by row and by column.
struct Planes<L> {
    width: usize,
    row_dark: Vec<L>,
    row_free: Vec<L>,
    col_dark: Vec<L>,
    col_free: Vec<L>,
}

impl<L: Lane> Planes<L> {
    fn read(canvas: &Canvas, width: usize) -> Planes<L> {
        let mut planes = Planes {
            width,
            row_dark: vec![L::ZERO; width],
            row_free: vec![L::ZERO; width],
            col_dark: vec![L::ZERO; width],
            col_free: vec![L::ZERO; width],
        };
        for y in 0..width {
            let (mut dark, mut free) = (L::ZERO, L::ZERO);
            for x in 0..width {
                // In range: width ≤ 177.
                let (is_dark, is_free) = match canvas.get(x as i16, y as i16) {
                    Module::Masked(c) => (c == Color::Dark, false),
                    Module::Unmasked(c) => (c == Color::Dark, true),
                    Module::Empty => (false, true),
                };
                if is_dark {
                    dark = dark | L::bit(x as u32);
                    planes.col_dark[x] = planes.col_dark[x] | L::bit(y as u32);
                }
                if is_free {
                    free = free | L::bit(x as u32);
                    planes.col_free[x] = planes.col_free[x] | L::bit(y as u32);
                }
            }
            planes.row_dark[y] = dark;
            planes.row_free[y] = free;
        }
        planes
    }

    /// The symbol under mask `mask` with its format information, into `rows` and `cols`.
    fn mask_into(&self, mask: usize, ec_level: EcLevel, rows: &mut [L], cols: &mut [L]) {
        let row_masks = &ROW_MASKS[mask];
        let col_masks = &COL_MASKS[mask];
        for (y, row) in rows.iter_mut().enumerate() {
            *row = self.row_dark[y] ^ (L::from_words(row_masks[y % ROW_PERIOD]) & self.row_free[y]);
        }
        for (x, col) in cols.iter_mut().enumerate() {
            *col = self.col_dark[x] ^ (L::from_words(col_masks[x % COL_PERIOD]) & self.col_free[x]);
        }
        // The format modules were reserved light; set the dark ones.
        let format = format_bits(ec_level, mask);
        for i in 0..15 {
            if format & (1 << i) != 0 {
                for (x, y) in format_positions(self.width, i) {
                    rows[y] = rows[y] | L::bit(x as u32);
                    cols[x] = cols[x] | L::bit(y as u32);
                }
            }
        }
    }
}

/// Bit `i` set when modules `i` and `i + 1` of `line` have the same colour (`pairs` = bits
/// `0..width − 1`).
#[inline]
fn same_as_next<L: Lane>(line: L, pairs: L) -> L {
    !(line ^ (line >> 1)) & pairs
}

/// N1 points of one line, from its [`same_as_next`] bits: a run of `5 + i` modules has
/// `1 + i` windows of five equal modules, the first of which starts the run; it scores
/// `N1 + i`, so N1 for each start and 1 for each other window.
#[inline]
fn run_points<L: Lane>(same: L) -> u32 {
    let five = same & (same >> 1) & (same >> 2) & (same >> 3);
    let runs = (five & !(five << 1)).count();
    N1 * runs + (five.count() - runs)
}

/// How many 1011101 patterns with four light modules before or after start in `line`
/// (modules outside the symbol are light: the lane holds zeros there).
#[inline]
fn finder_like<L: Lane>(line: L) -> u32 {
    let light = !line;
    let core = line & (light >> 1) & (line >> 2) & (line >> 3) & (line >> 4) & (light >> 5) & (line >> 6);
    let light_before = !((line << 1) | (line << 2) | (line << 3) | (line << 4));
    let light_after = !((line >> 7) | (line >> 8) | (line >> 9) | (line >> 10));
    (core & (light_before | light_after)).count()
}

fn score<L: Lane>(rows: &[L], cols: &[L], width: usize) -> Penalty {
    // Width ≤ 177 (the callers' canvases), so these fit.
    let pairs = L::low(width as u32 - 1);
    let (mut runs, mut blocks, mut finders, mut dark) = (0u32, 0u32, 0u32, 0u32);
    let mut previous: Option<(L, L)> = None;
    for &row in rows {
        let same = same_as_next(row, pairs);
        runs += run_points(same);
        finders += finder_like(row);
        dark += row.count();
        if let Some((above, above_same)) = previous {
            blocks += (same & above_same & !(row ^ above)).count();
        }
        previous = Some((row, same));
    }
    for &col in cols {
        runs += run_points(same_as_next(col, pairs));
        finders += finder_like(col);
    }
    let total = (width * width) as u32;
    let steps = (20 * dark).abs_diff(10 * total) / total;
    Penalty { runs, blocks: N2 * blocks, finder_like: N3 * finders, balance: N4 * steps }
}

fn score_masks<L: Lane>(canvas: &Canvas, width: usize, ec_level: EcLevel) -> [Penalty; 8] {
    debug_assert!(width <= MAX_WIDTH);
    let planes = Planes::<L>::read(canvas, width);
    let mut rows = vec![L::ZERO; width];
    let mut cols = vec![L::ZERO; width];
    let mut out = [Penalty::default(); 8];
    for (mask, penalty) in out.iter_mut().enumerate() {
        planes.mask_into(mask, ec_level, &mut rows, &mut cols);
        *penalty = score(&rows, &cols, width);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_tables_follow_the_mask_formulas_everywhere() {
        for m in 0..8 {
            for y in 0..MAX_WIDTH {
                for x in 0..MAX_WIDTH {
                    let row = ROW_MASKS[m][y % ROW_PERIOD][x / 64] >> (x % 64) & 1 == 1;
                    let col = COL_MASKS[m][x % COL_PERIOD][y / 64] >> (y % 64) & 1 == 1;
                    assert_eq!(row, mask_inverts(m, x, y), "row table, mask {m} at ({x}, {y})");
                    assert_eq!(col, mask_inverts(m, x, y), "column table, mask {m} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn format_bits_match_the_standards_table() {
        // ISO/IEC 18004 Annex C: the words for mask 0 at each level, and M with mask 5.
        assert_eq!(format_bits(EcLevel::M, 0), 0x5412);
        assert_eq!(format_bits(EcLevel::L, 0), 0x77c4);
        assert_eq!(format_bits(EcLevel::H, 0), 0x1689);
        assert_eq!(format_bits(EcLevel::Q, 0), 0x355f);
        assert_eq!(format_bits(EcLevel::M, 5), 0x40ce);
        // Any two format words differ in at least 7 bits (the code's minimum distance).
        let all: Vec<u32> = [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H]
            .into_iter()
            .flat_map(|ec| (0..8).map(move |m| format_bits(ec, m)))
            .collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!((a ^ b).count_ones() >= 7, "{a:015b} {b:015b}");
            }
        }
    }

    #[test]
    fn wide_lane_shifts_like_a_192_bit_integer() {
        let v = Wide([0x8000_0000_0000_0001, 0x0000_0000_0000_8001, 0x1]);
        assert_eq!(v << 1, Wide([0x2, 0x0000_0000_0001_0003, 0x2]));
        assert_eq!(v >> 1, Wide([0x8000_0000_0000_0000 | 0x4000_0000_0000_0000, 0x8000_0000_0000_4000, 0x0]));
        assert_eq!(v << 64, Wide([0, v.0[0], v.0[1]]));
        assert_eq!(v >> 70, Wide([v.0[1] >> 6 | v.0[2] << 58, v.0[2] >> 6, 0]));
        assert_eq!(Wide::low(130), Wide([u64::MAX, u64::MAX, 0b11]));
        assert_eq!(Wide::bit(129), Wide([0, 0, 0b10]));
        assert_eq!(Wide::low(177).count(), 177);
    }

    /// Bits of one version, filled to capacity (so the version is what was asked for).
    fn bits_for(version: i16, ec_level: EcLevel, seed: u64) -> Bits {
        let mut bits = Bits::new(Version::Normal(version));
        let capacity = bits.max_len(ec_level).unwrap();
        // Byte mode: 4 mode bits, 8 or 16 length bits, 8 a byte, 4 terminator bits.
        let length_bits = if version < 10 { 8 } else { 16 };
        let bytes = (capacity - 4 - length_bits - 4) / 8;
        let mut state = seed;
        let data: Vec<u8> = (0..bytes)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        bits.push_byte_data(&data).unwrap();
        bits.push_terminator(ec_level).unwrap();
        bits
    }

    #[test]
    fn scored_symbols_are_what_the_crate_draws_for_every_mask_version_and_level() {
        for version in 1..=40 {
            for (k, ec_level) in [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H].into_iter().enumerate() {
                let symbol =
                    Unmasked::from_bits(bits_for(version, ec_level, (version * 4) as u64 + k as u64), ec_level)
                        .unwrap();
                assert_eq!(symbol.version(), Version::Normal(version));
                let width = symbol.width();
                let scored = symbol.scored_symbols();
                for (m, mask) in MASKS.into_iter().enumerate() {
                    let drawn = symbol.clone().into_colors(mask);
                    for y in 0..width {
                        for x in 0..width {
                            assert_eq!(
                                scored[m][y][x],
                                drawn[y * width + x] == Color::Dark,
                                "version {version} {ec_level:?} mask {m} at ({x}, {y})"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_lane_type_scores_the_same() {
        for version in [1, 6, 10, 11] {
            let symbol = Unmasked::from_bits(bits_for(version, EcLevel::M, 7), EcLevel::M).unwrap();
            let width = symbol.width();
            let narrow = score_masks::<u64>(&symbol.canvas, width, EcLevel::M);
            assert_eq!(narrow, score_masks::<u128>(&symbol.canvas, width, EcLevel::M), "version {version}");
            assert_eq!(narrow, score_masks::<Wide>(&symbol.canvas, width, EcLevel::M), "version {version}");
        }
        for version in [12, 20, 27] {
            let symbol = Unmasked::from_bits(bits_for(version, EcLevel::M, 9), EcLevel::M).unwrap();
            let width = symbol.width();
            let middle = score_masks::<u128>(&symbol.canvas, width, EcLevel::M);
            assert_eq!(middle, score_masks::<Wide>(&symbol.canvas, width, EcLevel::M), "version {version}");
        }
    }

    #[test]
    fn line_rules_on_hand_made_lines() {
        let pairs = u64::low(20);
        // 21 modules: five dark, then seven light, the rest dark (9 modules).
        let line: u64 = 0b1_1111_1111_0000_0001_1111;
        // Runs of 5, 7 and 9: 3 + 5 + 7.
        assert_eq!(run_points(same_as_next(line, pairs)), 15);
        // 1011101 at 0 with the quiet zone before it, and at 4 with 0000 after it.
        assert_eq!(finder_like::<u64>(0b1011101), 1);
        assert_eq!(finder_like::<u64>(0b1011101 << 4 | 1 << 15), 1);
        // Dark modules 1 to 4 before it and 1 to 4 after it: no light area on either side.
        let pattern_at_4 = 0b1011101u64 << 4;
        assert_eq!(finder_like::<u64>(1 | pattern_at_4 | 1 << 14), 0);
        assert_eq!(finder_like::<u64>(1 | pattern_at_4 | 1 << 15), 1);
    }
}
