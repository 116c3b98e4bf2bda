//! `carepass code` (show the rotating e-voucher code) and `carepass scan` (act as a scanner
//! terminal). Drawing and verification are the core's; this file only prints and loops.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use carepass_core::domain::voucher::render::{to_bitmap, to_terminal, QrMatrix};
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
pub async fn once(app: &CarePass, purpose: Purpose, offline: bool, png: Option<&Path>) -> Result<(), String> {
    if let Err(e) = app.sync_clock().await {
        eprintln!("carepass: platform unreachable ({e}); using the last known clock offset");
    }
    let code = app.current_code(purpose, offline, None).map_err(explain)?;
    if let Some(path) = png {
        write_png(&code.qr, path)?;
    }
    println!("{}", code.text);
    println!("qr-version {}", code.qr.version);
    Ok(())
}

/// `code`: draws the live code from the core's code stream, redrawing at each rotation, with
/// a countdown, until Ctrl-C.
pub async fn live(app: &Arc<CarePass>, purpose: Purpose, offline: bool) -> Result<(), String> {
    if let Err(e) = app.sync_clock().await {
        eprintln!("carepass: platform unreachable ({e}); using the last known clock offset");
    }
    let mut codes = app.code_stream(purpose, offline, None);
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

fn draw(code: &carepass_core::domain::voucher::rotator::DisplayCode, purpose: Purpose, offline: bool) {
    let mut out = std::io::stdout().lock();
    // Clear the screen and draw the new code.
    let _ = write!(out, "\x1b[2J\x1b[H{}", to_terminal(&code.qr));
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
    crate::text::clean(&format!(
        "accepted: {holder}, presented by device {}{}{}",
        outcome.presenter_device_id.as_deref().unwrap_or("?"),
        if outcome.offline { ", offline profile" } else { "" },
        if outcome.proxy { ", by a proxy" } else { "" },
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
