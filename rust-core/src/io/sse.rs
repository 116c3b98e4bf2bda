//! A server-sent-events parser (the subset the live inbox stream uses): `id:` and `data:`
//! fields, multi-line data, comments (`:` heartbeats), events ended by a blank line; CRLF or
//! LF line ends. Fed bytes as they arrive; yields complete events.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Incremental parser. Lines longer than `max_line` bytes are an error (a misbehaving server).
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
    max_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("an event line is not UTF-8")]
    NotUtf8,
}

impl SseParser {
    pub fn new(max_line: usize) -> Self {
        SseParser { buffer: Vec::new(), event: None, id: None, data: Vec::new(), max_line }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if line.is_empty() {
                if !self.data.is_empty() || self.id.is_some() {
                    events.push(SseEvent { event: self.event.take(), id: self.id.take(), data: self.data.join("\n") });
                }
                self.data.clear();
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue; // comment / heartbeat
            }
            let (name, value) = match line.split_once(':') {
                Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match name {
                "data" => self.data.push(value.to_string()),
                "id" => self.id = Some(value.to_string()),
                "event" => self.event = Some(value.to_string()),
                _ => {}
            }
        }
        if self.buffer.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_endless_line_is_an_error() {
        let mut p = SseParser::new(16);
        assert_eq!(p.feed(&[b'a'; 40]), Err(SseError::LineTooLong(16)));
    }
}
