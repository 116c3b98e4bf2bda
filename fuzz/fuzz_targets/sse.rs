//! The live inbox stream's server-sent-events parser (`io::sse::SseParser`), fed what a
//! hostile or broken server could send, in pieces as the network delivers them.
//!
//! Input: byte 0 is the line limit (0 to 255 bytes), byte 1 seeds the chunking, the rest is
//! the stream. The stream is fed whole, in pseudo-random chunks of 1 to 64 bytes, and one
//! byte at a time, then a final blank line.
//!
//! Checked: nothing panics; no event carries a line longer than the limit (each `data` line,
//! the `id` and the `event` name, with their field names, fit in `max_line`), nor data over
//! the event limit; the chunking does not change the events or the error.
#![no_main]

use carepass_core::io::sse::{SseError, SseEvent, SseParser};
use carepass_fuzz::Rng;
use libfuzzer_sys::fuzz_target;

/// Feeds `chunks` then a blank line; the events until the first error, and that error.
fn run<'a>(max_line: usize, chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<SseEvent>, Option<SseError>) {
    let mut parser = SseParser::new(max_line);
    let mut events = Vec::new();
    for chunk in chunks.chain(std::iter::once(&b"\n"[..])) {
        match parser.feed(chunk) {
            Ok(mut more) => events.append(&mut more),
            Err(e) => {
                // What happens after an error is unspecified, but it must not panic.
                let _ = parser.feed(b"data: x\n\n");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

fn check_bounds(max_line: usize, events: &[SseEvent]) {
    // Every line fitted in `max_line` bytes without its line end: `data:` / `id:` / `event:`
    // and the value (an empty value may come from the bare field name, without the colon).
    let fits = |value: &str, field: &str| value.is_empty() || field.len() + ":".len() + value.len() <= max_line;
    for e in events {
        for line in e.data.split('\n') {
            assert!(fits(line, "data"), "data line of {} bytes over the limit {max_line}", line.len());
        }
        assert!(e.data.len() <= max_line.saturating_mul(4), "event data over the event limit");
        if let Some(id) = &e.id {
            assert!(fits(id, "id"), "id of {} bytes over the limit {max_line}", id.len());
        }
        if let Some(name) = &e.event {
            assert!(fits(name, "event"), "event name of {} bytes over the limit {max_line}", name.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (max_line, seed, stream) = match data {
        [a, b, rest @ ..] => (*a as usize, *b, rest),
        _ => return,
    };

    let whole = run(max_line, std::iter::once(stream));

    let mut rng = Rng::new(u64::from(seed));
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let len = (1 + rng.below(64)).min(stream.len() - at);
        chunks.push(&stream[at..at + len]);
        at += len;
    }
    let chunked = run(max_line, chunks.into_iter());
    let bytewise = run(max_line, stream.chunks(1));

    for (events, _) in [&whole, &chunked, &bytewise] {
        check_bounds(max_line, events);
    }
    // The same first error whatever the chunking; with no error, the same events.
    assert_eq!(whole.1, chunked.1, "chunking changed the error");
    assert_eq!(whole.1, bytewise.1, "byte-by-byte feeding changed the error");
    if whole.1.is_none() {
        assert_eq!(whole.0, chunked.0, "chunking changed the events");
        assert_eq!(whole.0, bytewise.0, "byte-by-byte feeding changed the events");
    } else {
        // Fed a byte at a time, every event completed before the error was handed out; fed
        // in bigger pieces, those of the pieces before the failing one: a prefix of them.
        assert!(bytewise.0.starts_with(&chunked.0), "chunking changed the events before the error");
        assert!(bytewise.0.starts_with(&whole.0), "events before the error differ");
    }
});
