//! The binary layout of a voucher code and of the issuer-signed device certificate, and their
//! text form for the QR code. `docs/voucher-code.md` is the normative description; this file
//! must match it byte for byte (the vectors in `tests/vectors/voucher/` hold both to it).
//!
//! ```text
//! code  = version(1)=0x01 flags(1) purpose(1) period_s(1) step(4, BE) nonce(4) device_id(8)
//!         [link_id(8) when flags.proxy] [certificate(103) when flags.offline] signature(64)
//! cert  = issuer_key_id(2, BE) device_key(33, SEC1 compressed) not_after_s(4, BE) issuer_sig(64)
//! text  = "CP1:" base45(code)
//! ```

use super::base45;
use super::Purpose;

pub const VERSION: u8 = 1;
pub const TEXT_PREFIX: &str = "CP1:";
pub const FLAG_OFFLINE: u8 = 0b0000_0001;
pub const FLAG_PROXY: u8 = 0b0000_0010;
pub const HEADER_LEN: usize = 20;
/// The family link a proxy code is shown under (`lnk_` and 16 hex digits, as 8 bytes).
pub const LINK_LEN: usize = 8;
pub const CERT_BODY_LEN: usize = 2 + 33 + 4;
pub const CERT_LEN: usize = CERT_BODY_LEN + 64;
pub const SIG_LEN: usize = 64;
pub const ONLINE_LEN: usize = HEADER_LEN + SIG_LEN;
pub const OFFLINE_LEN: usize = HEADER_LEN + CERT_LEN + SIG_LEN;
/// Domain separation of the code signature.
pub const CODE_CONTEXT: &[u8] = b"carepass-voucher-v1\0";
/// Domain separation of the certificate signature.
pub const CERT_CONTEXT: &[u8] = b"carepass-device-cert-v1\0";

/// Why bytes or text are not a voucher code (before any signature is checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a CarePass code (no CP1: prefix)")]
    NotACarePassCode,
    #[error("the code text is not valid base45")]
    BadText,
    #[error("unsupported code version {0}")]
    UnsupportedVersion(u8),
    #[error("the code is truncated or has extra bytes ({0} bytes)")]
    BadLength(usize),
    #[error("reserved flag bits are set")]
    ReservedFlags,
    #[error("unknown purpose {0}")]
    UnknownPurpose(u8),
    #[error("the period must be 1 to 255 seconds")]
    BadPeriod,
    #[error("not a device id (dev_ and 16 hex digits)")]
    BadDeviceId,
    #[error("not a link id (lnk_ and 16 hex digits)")]
    BadLinkId,
}

/// The issuer's statement "device `device_id` holds `device_key` until `not_after_s`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    pub issuer_key_id: u16,
    /// SEC1 compressed P-256 point.
    pub device_key: [u8; 33],
    /// Unix seconds.
    pub not_after_s: u32,
    pub signature: [u8; SIG_LEN],
}

impl DeviceCertificate {
    /// What the issuer signs: context, issuer key id, device id, device key, expiry.
    pub fn signed_bytes(issuer_key_id: u16, device_id: &[u8; 8], device_key: &[u8; 33], not_after_s: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(CERT_CONTEXT.len() + 8 + CERT_BODY_LEN);
        out.extend_from_slice(CERT_CONTEXT);
        out.extend_from_slice(&issuer_key_id.to_be_bytes());
        out.extend_from_slice(device_id);
        out.extend_from_slice(device_key);
        out.extend_from_slice(&not_after_s.to_be_bytes());
        out
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CERT_LEN);
        out.extend_from_slice(&self.issuer_key_id.to_be_bytes());
        out.extend_from_slice(&self.device_key);
        out.extend_from_slice(&self.not_after_s.to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() != CERT_LEN {
            return Err(FormatError::BadLength(bytes.len()));
        }
        Ok(DeviceCertificate {
            issuer_key_id: u16::from_be_bytes([bytes[0], bytes[1]]),
            device_key: bytes[2..35].try_into().map_err(|_| FormatError::BadLength(bytes.len()))?,
            not_after_s: u32::from_be_bytes(bytes[35..39].try_into().map_err(|_| FormatError::BadLength(bytes.len()))?),
            signature: bytes[39..103].try_into().map_err(|_| FormatError::BadLength(bytes.len()))?,
        })
    }
}

/// Everything in a code but its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBody {
    /// Set on a code a proxy shows for a relative: the link it is shown under (the proxy
    /// flag is set exactly when this is present).
    pub link: Option<[u8; LINK_LEN]>,
    pub purpose: Purpose,
    pub period_s: u8,
    /// Unix time divided by the period.
    pub step: u32,
    pub nonce: [u8; 4],
    pub device_id: [u8; 8],
    /// Present in the offline profile.
    pub certificate: Option<DeviceCertificate>,
}

/// A parsed code: its body, its signature, and the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherCode {
    pub body: CodeBody,
    pub signature: [u8; SIG_LEN],
    /// Everything before the signature (what the device signed, after [`CODE_CONTEXT`]).
    pub signed_part: Vec<u8>,
}

impl CodeBody {
    /// The bytes before the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OFFLINE_LEN);
        out.push(VERSION);
        let mut flags = 0;
        if self.certificate.is_some() {
            flags |= FLAG_OFFLINE;
        }
        if self.link.is_some() {
            flags |= FLAG_PROXY;
        }
        out.push(flags);
        out.push(self.purpose as u8);
        out.push(self.period_s);
        out.extend_from_slice(&self.step.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.device_id);
        if let Some(link) = &self.link {
            out.extend_from_slice(link);
        }
        if let Some(cert) = &self.certificate {
            out.extend_from_slice(&cert.to_bytes());
        }
        out
    }

    /// What the device signs: [`CODE_CONTEXT`] followed by [`CodeBody::to_bytes`].
    pub fn message(&self) -> Vec<u8> {
        signing_message(&self.to_bytes())
    }

    /// When this code's period starts, in Unix ms.
    pub fn valid_from_ms(&self) -> i64 {
        self.step as i64 * self.period_s as i64 * 1000
    }
}

/// [`CODE_CONTEXT`] followed by the signed part.
pub fn signing_message(signed_part: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CODE_CONTEXT.len() + signed_part.len());
    out.extend_from_slice(CODE_CONTEXT);
    out.extend_from_slice(signed_part);
    out
}

/// Joins a body and its signature into the code's bytes.
pub fn assemble(body: &CodeBody, signature: &[u8; SIG_LEN]) -> Vec<u8> {
    let mut out = body.to_bytes();
    out.extend_from_slice(signature);
    out
}

/// The code's QR text: `CP1:` and the base45 of its bytes.
pub fn to_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(TEXT_PREFIX.len() + bytes.len().div_ceil(2) * 3);
    out.push_str(TEXT_PREFIX);
    out.push_str(&base45::encode(bytes));
    out
}

/// Parses the QR text of a code. One trailing line end (`\r\n`, `\n` or `\r`, the Enter a
/// keyboard-wedge scanner types after the code) is removed first; nothing else is trimmed
/// (a space is a base45 character, and two line ends are not one scan).
pub fn parse_text(text: &str) -> Result<VoucherCode, FormatError> {
    let text = strip_line_end(text);
    let body = text.strip_prefix(TEXT_PREFIX).ok_or(FormatError::NotACarePassCode)?;
    parse_bytes(&base45::decode(body).ok_or(FormatError::BadText)?)
}

/// `text` without one trailing `\r\n`, `\n` or `\r`.
fn strip_line_end(text: &str) -> &str {
    text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n')).or_else(|| text.strip_suffix('\r')).unwrap_or(text)
}

/// Parses a code's bytes (no signature is checked here).
pub fn parse_bytes(bytes: &[u8]) -> Result<VoucherCode, FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::BadLength(0));
    }
    if bytes[0] != VERSION {
        return Err(FormatError::UnsupportedVersion(bytes[0]));
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::BadLength(bytes.len()));
    }
    let flags = bytes[1];
    if flags & !(FLAG_OFFLINE | FLAG_PROXY) != 0 {
        return Err(FormatError::ReservedFlags);
    }
    let offline = flags & FLAG_OFFLINE != 0;
    let proxy = flags & FLAG_PROXY != 0;
    let link_len = if proxy { LINK_LEN } else { 0 };
    let expected = if offline { OFFLINE_LEN } else { ONLINE_LEN } + link_len;
    if bytes.len() != expected {
        return Err(FormatError::BadLength(bytes.len()));
    }
    let purpose = Purpose::from_byte(bytes[2]).ok_or(FormatError::UnknownPurpose(bytes[2]))?;
    let period_s = bytes[3];
    if period_s == 0 {
        return Err(FormatError::BadPeriod);
    }
    let fixed = |range: std::ops::Range<usize>| bytes[range].to_vec();
    let step = u32::from_be_bytes(fixed(4..8).try_into().map_err(|_| FormatError::BadLength(bytes.len()))?);
    let nonce: [u8; 4] = fixed(8..12).try_into().map_err(|_| FormatError::BadLength(bytes.len()))?;
    let device_id: [u8; 8] = fixed(12..20).try_into().map_err(|_| FormatError::BadLength(bytes.len()))?;
    let signed_end = expected - SIG_LEN;
    let cert_start = HEADER_LEN + link_len;
    let link: Option<[u8; LINK_LEN]> = if proxy {
        Some(bytes[HEADER_LEN..cert_start].try_into().map_err(|_| FormatError::BadLength(bytes.len()))?)
    } else {
        None
    };
    let certificate = if offline { Some(DeviceCertificate::from_bytes(&bytes[cert_start..signed_end])?) } else { None };
    let signature: [u8; SIG_LEN] = bytes[signed_end..].try_into().map_err(|_| FormatError::BadLength(bytes.len()))?;
    Ok(VoucherCode {
        body: CodeBody { link, purpose, period_s, step, nonce, device_id, certificate },
        signature,
        signed_part: bytes[..signed_end].to_vec(),
    })
}

/// `dev_` and 16 lowercase hex digits ↔ the 8 bytes carried in a code.
pub fn device_id_to_bytes(device_id: &str) -> Result<[u8; 8], FormatError> {
    prefixed_id_to_bytes(device_id, "dev_").ok_or(FormatError::BadDeviceId)
}

pub fn device_id_to_string(bytes: &[u8; 8]) -> String {
    prefixed_id_to_string("dev_", bytes)
}

/// `lnk_` and 16 lowercase hex digits ↔ the 8 bytes a proxy code carries.
pub fn link_id_to_bytes(link_id: &str) -> Result<[u8; LINK_LEN], FormatError> {
    prefixed_id_to_bytes(link_id, "lnk_").ok_or(FormatError::BadLinkId)
}

pub fn link_id_to_string(bytes: &[u8; LINK_LEN]) -> String {
    prefixed_id_to_string("lnk_", bytes)
}

fn prefixed_id_to_bytes(id: &str, prefix: &str) -> Option<[u8; 8]> {
    let hex = id.strip_prefix(prefix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn prefixed_id_to_string(prefix: &str, bytes: &[u8; 8]) -> String {
    let mut out = String::from(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(offline: bool) -> CodeBody {
        CodeBody {
            link: Some([0x11; LINK_LEN]),
            purpose: Purpose::PharmacyPurchase,
            period_s: 30,
            step: 59_848_000,
            nonce: [1, 2, 3, 4],
            device_id: [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3],
            certificate: offline.then_some(DeviceCertificate {
                issuer_key_id: 7,
                device_key: [2; 33],
                not_after_s: 1_900_000_000,
                signature: [9; 64],
            }),
        }
    }

    #[test]
    fn both_profiles_round_trip_through_text() {
        for offline in [false, true] {
            let b = body(offline);
            let bytes = assemble(&b, &[5; 64]);
            assert_eq!(bytes.len(), if offline { OFFLINE_LEN } else { ONLINE_LEN } + LINK_LEN);
            let parsed = parse_text(&to_text(&bytes)).unwrap();
            assert_eq!(parsed.body, b);
            assert_eq!(parsed.signature, [5; 64]);
            assert_eq!(parsed.signed_part, b.to_bytes());
        }
    }

    #[test]
    fn malformed_bytes_get_their_reason() {
        let good = assemble(&body(false), &[5; 64]);
        assert_eq!(parse_bytes(&good[..50]), Err(FormatError::BadLength(50)));
        assert_eq!(parse_bytes(&[]), Err(FormatError::BadLength(0)));
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(parse_bytes(&v2), Err(FormatError::UnsupportedVersion(2)));
        let mut flags = good.clone();
        flags[1] |= 0x80;
        assert_eq!(parse_bytes(&flags), Err(FormatError::ReservedFlags));
        let mut purpose = good.clone();
        purpose[2] = 9;
        assert_eq!(parse_bytes(&purpose), Err(FormatError::UnknownPurpose(9)));
        let mut period = good.clone();
        period[3] = 0;
        assert_eq!(parse_bytes(&period), Err(FormatError::BadPeriod));
        let mut offline_flag_without_cert = good.clone();
        offline_flag_without_cert[1] |= FLAG_OFFLINE;
        assert_eq!(parse_bytes(&offline_flag_without_cert), Err(FormatError::BadLength(ONLINE_LEN + LINK_LEN)));
        // The proxy flag without its link id (an online code of another person, re-flagged).
        let plain = CodeBody { link: None, ..body(false) };
        let mut flagged = assemble(&plain, &[5; 64]);
        flagged[1] |= FLAG_PROXY;
        assert_eq!(parse_bytes(&flagged), Err(FormatError::BadLength(ONLINE_LEN)));
        assert_eq!(parse_text("XX1:ABC"), Err(FormatError::NotACarePassCode));
        assert_eq!(parse_text("CP1:abc"), Err(FormatError::BadText));
    }

    #[test]
    fn one_trailing_line_end_from_a_scanner_is_trimmed_and_nothing_else() {
        let text = to_text(&assemble(&body(false), &[5; 64]));
        for end in ["\r\n", "\n", "\r"] {
            assert_eq!(parse_text(&format!("{text}{end}")).map(|c| c.body), Ok(body(false)), "{end:?}");
        }
        for bad in ["\r\n\r\n", "\n\n", "\n\r", " ", "\t", " \n"] {
            assert_eq!(parse_text(&format!("{text}{bad}")).map(|c| c.body), Err(FormatError::BadText), "{bad:?}");
        }
        assert_eq!(parse_text(&format!("\n{text}")).map(|c| c.body), Err(FormatError::NotACarePassCode));
        assert_eq!(parse_text(""), Err(FormatError::NotACarePassCode), "an empty payload");
        assert_eq!(parse_text("\r\n"), Err(FormatError::NotACarePassCode), "a line end alone");
        assert_eq!(parse_text("CP1:"), Err(FormatError::BadLength(0)), "the prefix alone");
        assert_eq!(
            parse_text("cp1:").map(|c| c.body),
            Err(FormatError::NotACarePassCode),
            "the prefix is case-sensitive"
        );
    }

    #[test]
    fn device_ids_convert_both_ways() {
        let bytes = device_id_to_bytes("dev_0123456789abcdef").unwrap();
        assert_eq!(device_id_to_string(&bytes), "dev_0123456789abcdef");
        for bad in ["dev_0123", "0123456789abcdef", "dev_0123456789ABCDEF", "dev_0123456789abcdeg"] {
            assert_eq!(device_id_to_bytes(bad), Err(FormatError::BadDeviceId), "{bad}");
        }
    }
}
