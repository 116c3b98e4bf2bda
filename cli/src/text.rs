//! Text from the platform, made safe to print: a hospital name, a pharmacy name, an error
//! message could carry terminal escape sequences (clear the screen, rewrite a line, set the
//! window title) or Unicode direction overrides that make a line read as something else. The
//! terminal prints such text only through [`clean`]. (`--json` output is escaped by the JSON
//! encoder instead.)

use std::borrow::Cow;

/// Whether `c` could change what the terminal shows beyond its own glyph.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character (C0, DEL, C1 — ESC among them — and line breaks) and
/// every bidirectional override replaced by U+FFFD.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if is_unsafe(c) { '\u{FFFD}' } else { c }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_line_breaks_and_direction_overrides_are_replaced_and_the_rest_kept() {
        assert_eq!(clean("示例市第一人民医院 Demo"), "示例市第一人民医院 Demo");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("\u{1b}[2Jgone"), "\u{FFFD}[2Jgone");
        assert_eq!(clean("a\r\nb\u{7f}c\u{9b}d"), "a\u{FFFD}\u{FFFD}b\u{FFFD}c\u{FFFD}d");
        assert_eq!(clean("\u{202E}txt.exe"), "\u{FFFD}txt.exe");
        assert_eq!(clean("\u{1b}]0;pwned\u{7}"), "\u{FFFD}]0;pwned\u{FFFD}");
    }
}
