//! `carepass code` (show the rotating e-voucher code) and `carepass scan` (act as a scanner
//! terminal). Drawing and verification are the core's; this file only prints and loops.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use carepass_core::domain::voucher::render::{fit_terminal, smallest_terminal, to_bitmap, QrMatrix};
use carepass_core::domain::voucher::Purpose;
use carepass_core::io::net::{ClientOptions, PlatformClient};
use carepass_core::wire::{ScanOutcome, ScanRequest};
use carepass_core::{CarePass, SystemClock};

use crate::explain;

pub fn parse_purpose(name: &str) -> Result<Purpose, String> {
    Purpose::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Purpose::ALL.iter().map(|p| p.name()).collect();
        format!("unknown purpose {name:?}; one of {}", names.join(", "))
    })
}

/// `code --once`: the payload on the first line, `qr-version N` on the second.
pub async fn once(
    app: &CarePass,
    purpose: Purpose,
    offline: bool,
    png: Option<&Path>,
    subject: Option<&str>,
) -> Result<(), String> {
    if let Err(e) = app.sync_clock().await {
        eprintln!("carepass: platform unreachable ({e}); using the last known clock offset");
    }
    let code = app.current_code(purpose, offline, subject).map_err(explain)?;
    if let Some(path) = png {
        write_png(&code.qr, path)?;
    }
    println!("{}", code.text);
    println!("qr-version {}", code.qr.version);
    Ok(())
}

/// `code`: draws the live code from the core's code stream, redrawing at each rotation, with
/// a countdown, until Ctrl-C.
pub async fn live(app: &Arc<CarePass>, purpose: Purpose, offline: bool, subject: Option<&str>) -> Result<(), String> {
    if let Err(e) = app.sync_clock().await {
        eprintln!("carepass: platform unreachable ({e}); using the last known clock offset");
    }
    let mut codes = app.code_stream(purpose, offline, subject.map(str::to_string));
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let Some(first) = codes.next().await else { return Ok(()) };
    let mut code = first.map_err(explain)?;
    draw(&code, purpose, offline);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { println!(); return Ok(()); }
            next = codes.next() => match next {
                Some(Ok(new)) => { code = new; draw(&code, purpose, offline); }
                Some(Err(e)) => return Err(explain(e)),
                None => return Ok(()),
            },
            _ = tick.tick() => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\rnext code in {:>2} s (Ctrl-C to stop) ", code.seconds_left(app.platform_now_ms()));
                let _ = out.flush();
            }
        }
    }
}

/// The terminal's size (columns, lines): `COLUMNS`/`LINES` when set, else the terminal's own
/// (TIOCGWINSZ on stdout), else 80×24.
pub fn terminal_size() -> (u32, u32) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u32>().ok()).filter(|v| *v > 0);
    if let (Some(c), Some(l)) = (env("COLUMNS"), env("LINES")) {
        return (c, l);
    }
    #[cfg(unix)]
    {
        let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct given; a failure leaves it 0.
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 && size.ws_row > 0 {
            return (u32::from(size.ws_col), u32::from(size.ws_row));
        }
    }
    (80, 24)
}

/// Lines the live view keeps below the code: the caption and the countdown.
const CAPTION_LINES: u32 = 2;

fn draw(code: &carepass_core::domain::voucher::rotator::DisplayCode, purpose: Purpose, offline: bool) {
    let mut out = std::io::stdout().lock();
    let (columns, lines) = terminal_size();
    // The densest rendering the terminal needs; if none fits, say so instead of a code
    // whose top scrolls away (and no longer decodes).
    let Some(drawn) = fit_terminal(&code.qr, columns, lines, CAPTION_LINES) else {
        let (c, l) = smallest_terminal(&code.qr, CAPTION_LINES);
        let _ = writeln!(
            out,
            "\x1b[2J\x1b[Hthe terminal is {columns}×{lines}; this code needs at least {c}×{l}: enlarge it, or use \
             `carepass code --once --png FILE`"
        );
        let _ = out.flush();
        return;
    };
    // Clear the screen and draw the new code.
    let _ = write!(out, "\x1b[2J\x1b[H{drawn}");
    let _ = writeln!(
        out,
        "{} code, {}, QR version {}",
        purpose.name(),
        if offline { "offline profile" } else { "online profile" },
        code.qr.version
    );
    let _ = out.flush();
}

/// `scan`: sends a scanned payload to the platform as a scanner terminal.
pub async fn scan(server: &str, token: &str, payload: &str, purpose: Purpose) -> Result<ScanOutcome, String> {
    let client =
        PlatformClient::new(server, Arc::new(SystemClock), &ClientOptions::default()).map_err(|e| e.to_string())?;
    let request = ScanRequest { payload: payload.trim().to_string(), purpose };
    client.post("v1/scans", &request, Some(token)).await.map_err(|e| e.to_string())
}

/// One line saying what the scanner decided.
pub fn describe_outcome(outcome: &ScanOutcome) -> String {
    if !outcome.accepted {
        return crate::text::clean(&format!("rejected: {}", outcome.reason.as_deref().unwrap_or("unknown")))
            .into_owned();
    }
    let holder = outcome.holder.as_ref().map(|h| format!("{} ({})", h.name, h.person_id)).unwrap_or_default();
    let by = match (&outcome.presenter, &outcome.link_id) {
        (Some(p), Some(link)) => {
            // The relationship is what the holder is to the presenter; say what the presenter is.
            let role = match outcome.relationship {
                Some(carepass_core::domain::family::Relationship::Parent) => "child",
                Some(carepass_core::domain::family::Relationship::Child) => "parent",
                Some(carepass_core::domain::family::Relationship::Spouse) => "spouse",
                Some(carepass_core::domain::family::Relationship::Sibling) => "sibling",
                Some(carepass_core::domain::family::Relationship::Grandparent) => "grandchild",
                Some(carepass_core::domain::family::Relationship::Grandchild) => "grandparent",
                None => "proxy",
            };
            format!(", presented by their {role} {} ({}) under link {link}", p.name, p.person_id)
        }
        _ => String::new(),
    };
    crate::text::clean(&format!(
        "accepted: {holder}{by}, from device {}{}",
        outcome.presenter_device_id.as_deref().unwrap_or("?"),
        if outcome.offline { ", offline profile" } else { "" },
    ))
    .into_owned()
}

/// Writes the QR as a grayscale PNG: 6 pixels a module, four-module quiet zone.
pub fn write_png(qr: &QrMatrix, path: &Path) -> Result<(), String> {
    let (side, pixels) = to_bitmap(qr, 6);
    let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}
