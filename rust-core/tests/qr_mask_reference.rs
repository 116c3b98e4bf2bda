//! The fast mask chooser (`voucher::qr_mask`) against a plain, rule-by-rule reference of the
//! ISO/IEC 18004 penalty written here over the module matrix the crate draws for each mask:
//! equal penalties, rule by rule, for all eight masks and the same choice, on random base45
//! texts of QR versions 1–10 at level M, the real code shapes (`CP1:` + base45 of 84 and 187
//! bytes: 130 and 285 characters) and symbols of versions 11–40; and `encode_qr` gives exactly
//! the matrix the crate draws with the chosen mask. It also measures how often the qrcode
//! crate's own choice (`QrCode::with_error_correction_level`) differs from the standard's, and
//! checks that the difference is its linear dark-proportion score.

use carepass_core::domain::voucher::base45;
use carepass_core::domain::voucher::qr_mask::{mask_number, Unmasked, MASKS};
use carepass_core::domain::voucher::render::encode_qr;
use qrcode::bits::{encode_auto, Bits};
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::ec::construct_codewords;
use qrcode::{Color, EcLevel, QrCode, Version};

const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// SplitMix64: deterministic test randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn base45_text(&mut self, len: usize) -> String {
        (0..len).map(|_| BASE45[self.below(45)] as char).collect()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

type Matrix = Vec<Vec<bool>>;

/// The reference: each rule exactly as the standard words it, module by module.
/// Returns [N1, N2, N3, N4] points.
fn reference_penalty(m: &Matrix) -> [u32; 4] {
    let n = m.len();
    let at = |horizontal: bool, line: usize, i: usize| if horizontal { m[line][i] } else { m[i][line] };

    // N1: each maximal run of 5 + i same-colour modules in a row or column: 3 + i.
    let mut n1 = 0;
    for horizontal in [true, false] {
        for line in 0..n {
            let mut start = 0;
            while start < n {
                let mut end = start;
                while end + 1 < n && at(horizontal, line, end + 1) == at(horizontal, line, start) {
                    end += 1;
                }
                let len = (end - start + 1) as u32;
                if len >= 5 {
                    n1 += 3 + (len - 5);
                }
                start = end + 1;
            }
        }
    }

    // N2: each 2×2 block of one colour, overlapping blocks each counted: 3.
    let mut n2 = 0;
    for y in 0..n - 1 {
        for x in 0..n - 1 {
            let c = m[y][x];
            if m[y][x + 1] == c && m[y + 1][x] == c && m[y + 1][x + 1] == c {
                n2 += 3;
            }
        }
    }

    // N3: dark-light-dark-dark-dark-light-dark with four light modules before or after
    // (outside the symbol is the light quiet zone): 40 for each such pattern.
    const PATTERN: [bool; 7] = [true, false, true, true, true, false, true];
    let mut n3 = 0;
    for horizontal in [true, false] {
        for line in 0..n {
            let dark = |i: isize| i >= 0 && (i as usize) < n && at(horizontal, line, i as usize);
            for start in 0..=n - 7 {
                if (0..7).any(|k| at(horizontal, line, start + k) != PATTERN[k]) {
                    continue;
                }
                let s = start as isize;
                let light_before = (s - 4..s).all(|i| !dark(i));
                let light_after = (s + 7..s + 11).all(|i| !dark(i));
                if light_before || light_after {
                    n3 += 40;
                }
            }
        }
    }

    // N4: 10 points for each full 5 % step the dark proportion is away from 50 %.
    let dark = m.iter().flatten().filter(|d| **d).count() as u64;
    let total = (n * n) as u64;
    // Deviation in percent, times `total`, so the comparison is exact.
    let deviation = (100 * dark).abs_diff(50 * total);
    let mut k = 0;
    while 5 * (k + 1) * total <= deviation {
        k += 1;
    }
    [n1, n2, n3, 10 * k as u32]
}

/// The crate's dark-proportion score (`compute_balance_penalty_score` in qrcode 0.14): linear,
/// |⌊200·dark/total⌋ − 100|.
fn crate_balance(m: &Matrix) -> u32 {
    let dark = m.iter().flatten().filter(|d| **d).count();
    let total = m.len() * m.len();
    (dark * 200 / total).abs_diff(100) as u32
}

fn to_matrix(colors: &[Color], width: usize) -> Matrix {
    colors.chunks(width).map(|row| row.iter().map(|c| *c == Color::Dark).collect()).collect()
}

/// The crate's public canvas API, step by step, with one given mask.
fn crate_canvas_with_mask(text: &str, mask: MaskPattern) -> Matrix {
    let bits = encode_auto(text.as_bytes(), EcLevel::M).unwrap();
    let version = bits.version();
    let (data, ec) = construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    canvas.apply_mask(mask);
    to_matrix(&canvas.into_colors(), version.width() as usize)
}

fn lowest(scores: &[u32; 8]) -> usize {
    (0..8).fold(0, |best, m| if scores[m] < scores[best] { m } else { best })
}

struct Tally {
    symbols: usize,
    by_version: Vec<usize>,
    crate_differs: usize,
    chosen: [usize; 8],
}

impl Default for Tally {
    fn default() -> Self {
        Tally { symbols: 0, by_version: vec![0; 41], crate_differs: 0, chosen: [0; 8] }
    }
}

/// Checks one symbol; returns the standard's mask, each mask's matrix and its reference
/// penalties.
fn check(symbol: &Unmasked, label: &str, tally: &mut Tally) -> (usize, Vec<Matrix>, Vec<[u32; 4]>) {
    let width = symbol.width();
    let matrices: Vec<Matrix> = MASKS.iter().map(|&mask| to_matrix(&symbol.clone().into_colors(mask), width)).collect();
    let reference: Vec<[u32; 4]> = matrices.iter().map(reference_penalty).collect();
    let fast = symbol.penalties();
    for m in 0..8 {
        let f = fast[m];
        assert_eq!(
            [f.runs, f.blocks, f.finder_like, f.balance],
            reference[m],
            "{label}: mask {m}, rules N1..N4, fast scorer vs reference"
        );
    }
    let totals: [u32; 8] = std::array::from_fn(|m| reference[m].iter().sum());
    let standard = lowest(&totals);
    assert_eq!(mask_number(symbol.best_mask()) as usize, standard, "{label}: chosen mask, penalties {totals:?}");
    // The chooser's tie rule: no lower-numbered mask has the same total.
    assert!(totals[..standard].iter().all(|t| *t > totals[standard]), "{label}: tie not broken to the lowest mask");
    tally.symbols += 1;
    if let Version::Normal(v) = symbol.version() {
        tally.by_version[v as usize] += 1;
    }
    tally.chosen[standard] += 1;
    (standard, matrices, reference)
}

/// The crate's own choice for `text`, as a mask number, from its matrix; and whether its
/// choice is the lowest total with its linear balance score in place of the standard's N4.
fn crate_choice(text: &str, matrices: &[Matrix], reference: &[[u32; 4]], label: &str) -> usize {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
    let theirs = to_matrix(&code.to_colors(), code.width());
    let choice = matrices.iter().position(|m| *m == theirs).unwrap_or_else(|| panic!("{label}: crate matrix unknown"));
    let with_linear_balance: [u32; 8] = std::array::from_fn(|m| {
        let [n1, n2, n3, _] = reference[m];
        n1 + n2 + n3 + crate_balance(&matrices[m])
    });
    assert_eq!(choice, lowest(&with_linear_balance), "{label}: the crate's choice is not explained by its N4 alone");
    choice
}

#[test]
fn fast_chooser_agrees_with_the_reference_on_random_texts_and_code_shapes() {
    let mut rng = Rng(0x00C0_FFEE_2026);
    let mut tally = Tally::default();
    let mut texts: Vec<String> = (0..2_000)
        .map(|_| {
            // Alphanumeric capacity at level M: 311 characters in version 10.
            let len = 1 + rng.below(311);
            rng.base45_text(len)
        })
        .collect();
    // The real shapes: `CP1:` + base45 of the 84-byte online and 187-byte offline codes.
    for _ in 0..150 {
        texts.push(format!("CP1:{}", base45::encode(&rng.bytes(84))));
        texts.push(format!("CP1:{}", base45::encode(&rng.bytes(187))));
    }
    let (mut online, mut offline) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        let label = format!("text {i} ({} chars)", text.len());
        match text.len() {
            130 if text.starts_with("CP1:") => online += 1,
            285 if text.starts_with("CP1:") => offline += 1,
            _ => {}
        }
        let symbol = Unmasked::encode(text.as_bytes(), EcLevel::M).unwrap();
        let (standard, matrices, reference) = check(&symbol, &label, &mut tally);

        // What the app draws is exactly what the crate's canvas draws with the standard's mask.
        let qr = encode_qr(text).unwrap();
        assert_eq!(Version::Normal(i16::from(qr.version)), symbol.version(), "{label}");
        assert_eq!(qr.size as usize, symbol.width(), "{label}");
        let by_crate = crate_canvas_with_mask(text, MASKS[standard]);
        assert_eq!(by_crate, matrices[standard], "{label}");
        assert_eq!(qr.modules, by_crate.concat(), "{label}");

        if crate_choice(text, &matrices, &reference, &label) != standard {
            tally.crate_differs += 1;
        }
    }
    assert_eq!((online, offline), (150, 150));
    for v in 1..=10 {
        assert!(tally.by_version[v] >= 20, "version {v}: only {} symbols", tally.by_version[v]);
    }
    assert!(tally.by_version[6] > 150 && tally.by_version[10] > 150);
    // Every mask is the standard's choice for some of these.
    assert!(tally.chosen.iter().all(|n| *n > 0), "chosen masks {:?}", tally.chosen);
    eprintln!(
        "{} symbols (versions 1-10: {:?}); standard's choice by mask {:?}; the qrcode crate chose another mask for {} ({:.1} %)",
        tally.symbols,
        &tally.by_version[1..=10],
        tally.chosen,
        tally.crate_differs,
        100.0 * tally.crate_differs as f64 / tally.symbols as f64
    );
}

#[test]
fn fast_chooser_agrees_with_the_reference_on_versions_11_to_40() {
    let mut rng = Rng(0x5EED_0040);
    let mut tally = Tally::default();
    for version in 11..=40i16 {
        for level in [EcLevel::L, EcLevel::M, EcLevel::H] {
            let mut bits = Bits::new(Version::Normal(version));
            let capacity = bits.max_len(level).unwrap();
            // Alphanumeric: 4 mode bits, 11 or 13 length bits, 11 bits per 2 characters, 4 terminator bits.
            let length_bits = if version < 27 { 11 } else { 13 };
            let chars = (capacity - 4 - length_bits - 4) * 2 / 11;
            let shorter = rng.below(chars / 20 + 1);
            let text = rng.base45_text(chars - shorter);
            bits.push_alphanumeric_data(text.as_bytes()).unwrap();
            bits.push_terminator(level).unwrap();
            let symbol = Unmasked::from_bits(bits, level).unwrap();
            assert_eq!(symbol.version(), Version::Normal(version));
            check(&symbol, &format!("version {version} {level:?}"), &mut tally);
        }
    }
    assert_eq!(tally.symbols, 90);
}
