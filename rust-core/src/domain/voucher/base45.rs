//! Base45 (RFC 9285): bytes to the 45-character QR alphanumeric alphabet, so a binary code
//! rides in the QR alphanumeric mode (5.5 bits a character) instead of byte mode (8 bits).

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Encodes bytes: each pair becomes three characters, a last single byte two.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(2) * 3);
    for chunk in bytes.chunks(2) {
        let (mut n, digits) = match *chunk {
            [a, b] => ((a as u32) << 8 | b as u32, 3),
            [a] => (a as u32, 2),
            _ => unreachable!("chunks(2) yields one or two bytes"),
        };
        for _ in 0..digits {
            out.push(ALPHABET[(n % 45) as usize] as char);
            n /= 45;
        }
    }
    out
}

/// Decodes base45 text; `None` for a character outside the alphabet, a dangling single
/// character, or a group whose value does not fit its bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> = text.bytes().map(value_of).collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(values.len() / 3 * 2 + 1);
    for group in values.chunks(3) {
        match *group {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                if n > 0xFFFF {
                    return None;
                }
                out.push((n >> 8) as u8);
                out.push(n as u8);
            }
            [c, d] => {
                let n = c + d * 45;
                if n > 0xFF {
                    return None;
                }
                out.push(n as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").as_deref(), Some(&b"ietf!"[..]));
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)), Some(bytes));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), Some(all));
    }

    #[test]
    fn invalid_text_is_refused() {
        assert_eq!(decode("A"), None, "dangling character");
        assert_eq!(decode("GGW"), None, "65535 < value");
        assert_eq!(decode("ab"), None, "lowercase is not in the alphabet");
        assert_eq!(decode("::"), None, "two characters over 255");
    }
}
