//! A server-sent-events parser (the WHATWG event-stream format, the subset the live inbox
//! stream uses): `id:`, `event:` and `data:` fields, multi-line data, comments (`:`
//! heartbeats), events ended by a blank line; lines end with CRLF, LF or a lone CR.
//!
//! Fed bytes as they arrive, it yields complete events. It is linear in its input: each byte
//! is looked at a bounded number of times (the scan resumes where it stopped), whatever the
//! chunking. And it is bounded against a hostile server: a line longer than `max_line`, or an
//! event whose data grows past `max_event`, is an error, not memory.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("an event's data is longer than {0} bytes")]
    EventTooLarge(usize),
    #[error("an event line is not UTF-8")]
    NotUtf8,
}

/// Incremental parser.
pub struct SseParser {
    /// Bytes of the line being read (complete lines are consumed at once).
    line: Vec<u8>,
    /// A CR ended the last line: an LF right after it belongs to the same line end.
    after_cr: bool,
    event: Option<String>,
    id: Option<String>,
    data: String,
    has_data: bool,
    max_line: usize,
    max_event: usize,
    /// Bytes looked at so far (the linear-time test reads it).
    #[cfg(test)]
    examined: usize,
}

impl SseParser {
    /// A parser refusing lines over `max_line` bytes and events whose data exceeds
    /// `max_event` bytes (four times `max_line` when built with [`SseParser::new`]).
    pub fn new(max_line: usize) -> Self {
        Self::with_limits(max_line, max_line.saturating_mul(4))
    }

    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            event: None,
            id: None,
            data: String::new(),
            has_data: false,
            max_line,
            max_event,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            #[cfg(test)]
            {
                self.examined += 1;
            }
            if b == b'\n' && self.after_cr {
                // The LF of a CRLF whose CR ended the line already.
                self.after_cr = false;
                i += 1;
                start = i;
                continue;
            }
            self.after_cr = false;
            if b == b'\n' || b == b'\r' {
                self.push_part(&bytes[start..i])?;
                self.after_cr = b == b'\r';
                let line = std::mem::take(&mut self.line);
                if let Some(event) = self.take_line(&line)? {
                    events.push(event);
                }
                i += 1;
                start = i;
                continue;
            }
            i += 1;
        }
        self.push_part(&bytes[start..])?;
        Ok(events)
    }

    /// Adds bytes to the line being read, within the line limit.
    fn push_part(&mut self, part: &[u8]) -> Result<(), SseError> {
        if self.line.len() + part.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// Handles one complete line; a blank line dispatches the event being built.
    fn take_line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            let event = (self.has_data || self.id.is_some()).then(|| SseEvent {
                event: self.event.take(),
                id: self.id.take(),
                data: std::mem::take(&mut self.data),
            });
            self.data.clear();
            self.has_data = false;
            self.event = None;
            self.id = None;
            return Ok(event);
        }
        if line[0] == b':' {
            return Ok(None); // comment / heartbeat
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "data" => {
                let added = value.len() + usize::from(self.has_data);
                if self.data.len() + added > self.max_event {
                    return Err(SseError::EventTooLarge(self.max_event));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.id = Some(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: None, id: id.map(Into::into), data: data.into() }
    }

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = SseParser::new(1024);
        assert!(p.feed(b": ping\n\nid: 3\nevent: bill\nda").unwrap().is_empty());
        let events = p.feed(b"ta: {\"a\":1}\r\ndata: x\r\n\r\nid: 4\n").unwrap();
        assert_eq!(
            events,
            vec![SseEvent { event: Some("bill".into()), id: Some("3".into()), data: "{\"a\":1}\nx".into() }]
        );
        assert_eq!(p.feed(b"data: y\n\n").unwrap()[0].id.as_deref(), Some("4"));
    }

    #[test]
    fn every_line_end_is_a_line_end_and_crlf_split_across_chunks_is_one() {
        let stream = b"data: a\r\rdata: b\n\ndata: c\r\n\r\n";
        let mut p = SseParser::new(64);
        let all: Vec<SseEvent> = stream.iter().flat_map(|b| p.feed(&[*b]).unwrap()).collect();
        assert_eq!(all, vec![event(None, "a"), event(None, "b"), event(None, "c")]);
        // A CR at the end of one chunk and its LF at the start of the next: one line end.
        let mut p = SseParser::new(64);
        assert!(p.feed(b"data: x\r").unwrap().is_empty());
        assert!(p.feed(b"\n").unwrap().is_empty(), "no blank line was seen");
        assert_eq!(p.feed(b"\n").unwrap(), vec![event(None, "x")]);
    }

    #[test]
    fn an_endless_line_is_an_error() {
        let mut p = SseParser::new(16);
        assert_eq!(p.feed(&[b'a'; 40]), Err(SseError::LineTooLong(16)));
        let mut p = SseParser::new(16);
        for _ in 0..16 {
            p.feed(b"a").unwrap();
        }
        assert_eq!(p.feed(b"a"), Err(SseError::LineTooLong(16)), "also when it comes byte by byte");
    }

    #[test]
    fn data_lines_without_a_blank_line_are_bounded() {
        let mut p = SseParser::with_limits(64, 100);
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = p.feed(b"data: 0123456789\n") {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::EventTooLarge(100)));
    }

    #[test]
    fn each_byte_is_looked_at_once_whatever_the_chunking() {
        // Runs of line ends made the old parser rescan its buffer from the start for every
        // line: quadratic. Count the work instead of timing it.
        let mut input = Vec::new();
        for i in 0..2_000 {
            input.extend_from_slice(b"\r\n\n\r\r");
            input.extend_from_slice(format!("data: {i}\n").as_bytes());
        }
        input.push(b'\n'); // the blank line that ends the last event
        for chunk in [1, 7, 4096, input.len()] {
            let mut p = SseParser::new(1024);
            let events: usize = input.chunks(chunk).map(|c| p.feed(c).unwrap().len()).sum();
            assert_eq!(events, 2_000, "chunk {chunk}");
            assert_eq!(p.examined, input.len(), "chunk {chunk}: every byte once");
        }
    }
}
