//! The electronic medical receipt (医疗收费电子票据; `docs/payments.md` § 7): issued by the
//! platform after settlement, signed with its receipt key, verified by the core offline
//! against the cached public half, kept sealed, shown as JSON or as an SVG card.
//!
//! Transport form ([`SignedReceipt`]): `{"key_id", "body", "signature"}` where `body` is the
//! receipt's JSON, base64url without padding, and the signature (ECDSA P-256 / SHA-256, r‖s,
//! base64url) is over `"carepass-receipt-v1" 0x00 ‖ key id (2, BE) ‖ the body's bytes`. The
//! verifier checks the bytes it was given, then decodes them: no canonical JSON is needed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::{self, KeyError};
use crate::domain::money::Fen;
use crate::domain::settlement::ItemCategory;

pub const CONTEXT: &[u8] = b"carepass-receipt-v1\0";
const CHECK_CONTEXT: &[u8] = b"carepass-receipt-check-v1\0";
/// The largest receipt body accepted (a bill has at most 200 items).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An original receipt, or the write-off (冲红) that cancels one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Original,
    WriteOff,
}

/// Names a receipt: code (票据代码) and number (票据号码).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptRef {
    pub receipt_code: String,
    pub receipt_number: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptParty {
    pub person_id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptItem {
    pub code: String,
    pub name: String,
    pub category: ItemCategory,
    pub quantity: u32,
    pub amount: Fen,
}

/// A receipt's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub version: u8,
    pub kind: ReceiptKind,
    /// 票据代码: eight digits (the region's six, then the year's last two).
    pub receipt_code: String,
    /// 票据号码: ten digits.
    pub receipt_number: String,
    /// 校验码: six characters from [`check_code`].
    pub check_code: String,
    pub issued_at_ms: i64,
    /// The patient the care was for.
    pub payer: ReceiptParty,
    /// Who confirmed the payment when it was not the payer (a family proxy), with the link.
    #[serde(default)]
    pub presented_by: Option<ReceiptParty>,
    #[serde(default)]
    pub link_id: Option<String>,
    /// The hospital or pharmacy that charged.
    pub payee: String,
    pub bill_id: String,
    pub payment_id: String,
    pub items: Vec<ReceiptItem>,
    pub total: Fen,
    /// 统筹基金支付.
    pub fund: Fen,
    /// 个人账户支付.
    pub personal_account: Fen,
    /// 其他基金支付: family mutual aid (家庭共济).
    pub mutual_aid: Fen,
    /// 个人现金支付.
    pub cash: Fen,
    /// 个人自付: the patient's share of what is in the scheme (`total − fund − self_pay`).
    pub own_pay: Fen,
    /// 个人自费: what is out of the scheme (class C).
    pub self_pay: Fen,
    /// The cash channel, masked.
    pub channel: String,
    /// For a write-off: the receipt it cancels.
    #[serde(default)]
    pub writes_off: Option<ReceiptRef>,
}

/// A receipt as the platform sends it: its JSON as the signed body.
pub type SignedReceipt = crate::domain::crypto::SignedBody;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    #[error("receipt signed with an unknown key")]
    UnknownKey,
    #[error("the receipt's signature does not verify")]
    Forged,
    #[error("the receipt's check code is wrong")]
    CheckCode,
    #[error("the receipt's amounts do not add up: {0}")]
    Amounts(&'static str),
}

impl ReceiptError {
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptError::Malformed(_) => "malformed",
            ReceiptError::UnknownKey => "unknown_key",
            ReceiptError::Forged => "forged",
            ReceiptError::CheckCode => "check_code",
            ReceiptError::Amounts(_) => "amounts",
        }
    }
}

/// The receipt's date in China Standard Time, `YYYYMMDD`.
pub fn receipt_date(issued_at_ms: i64) -> String {
    crate::domain::person::china_date(issued_at_ms).format("%Y%m%d").to_string()
}

/// The check code (校验码): the first three bytes, upper-case hex, of
/// SHA-256(`"carepass-receipt-check-v1" 0x00 ‖ code ‖ 0x00 ‖ number ‖ 0x00 ‖ date ‖ 0x00 ‖ total`)
/// with the date as `YYYYMMDD` and the total in fen as a decimal — so a receipt is verified
/// by code + number + check code + date + amount, as the finance authority's service does.
pub fn check_code(receipt_code: &str, receipt_number: &str, issued_at_ms: i64, total: Fen) -> String {
    let mut bytes = CHECK_CONTEXT.to_vec();
    for part in [receipt_code, receipt_number, &receipt_date(issued_at_ms), &total.0.to_string()] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    bytes.pop();
    digest(&SHA256, &bytes).as_ref()[..3].iter().map(|b| format!("{b:02X}")).collect()
}

fn digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

impl Receipt {
    /// Checks the receipt on its own: format, check code, and the amounts —
    /// `total = fund + personal_account + mutual_aid + cash = Σ items = fund + own_pay + self_pay`,
    /// nothing negative, and a write-off names what it cancels (an original does not).
    pub fn check(&self) -> Result<(), ReceiptError> {
        if self.version != 1 {
            return Err(ReceiptError::Malformed("version"));
        }
        if !digits(&self.receipt_code, 8) {
            return Err(ReceiptError::Malformed("receipt code"));
        }
        if !digits(&self.receipt_number, 10) {
            return Err(ReceiptError::Malformed("receipt number"));
        }
        if (self.kind == ReceiptKind::WriteOff) != self.writes_off.is_some() {
            return Err(ReceiptError::Malformed("a write-off names the receipt it cancels, and only a write-off"));
        }
        if self.presented_by.is_some() != self.link_id.is_some() {
            return Err(ReceiptError::Malformed("a proxy's receipt names the link, and only then"));
        }
        if self.items.is_empty() {
            return Err(ReceiptError::Malformed("no items"));
        }
        if self.check_code != check_code(&self.receipt_code, &self.receipt_number, self.issued_at_ms, self.total) {
            return Err(ReceiptError::CheckCode);
        }
        let parts =
            [self.total, self.fund, self.personal_account, self.mutual_aid, self.cash, self.own_pay, self.self_pay];
        if parts.iter().any(|f| f.0 < 0) || self.items.iter().any(|i| i.amount.0 < 0) {
            return Err(ReceiptError::Amounts("negative amount"));
        }
        let sum = |fs: &[Fen]| Fen::sum(fs.iter().copied()).map_err(|_| ReceiptError::Amounts("overflow"));
        if sum(&[self.fund, self.personal_account, self.mutual_aid, self.cash])? != self.total {
            return Err(ReceiptError::Amounts("the sources do not sum to the total"));
        }
        if sum(&[self.fund, self.own_pay, self.self_pay])? != self.total {
            return Err(ReceiptError::Amounts("fund, own pay and self pay do not sum to the total"));
        }
        let items = Fen::sum(self.items.iter().map(|i| i.amount)).map_err(|_| ReceiptError::Amounts("overflow"))?;
        if items != self.total {
            return Err(ReceiptError::Amounts("the items do not sum to the total"));
        }
        Ok(())
    }

    pub fn reference(&self) -> ReceiptRef {
        ReceiptRef { receipt_code: self.receipt_code.clone(), receipt_number: self.receipt_number.clone() }
    }

    /// Signs the receipt (after checking it) with `sign` under `key_id`.
    pub fn sign(
        &self,
        key_id: u16,
        sign: impl FnOnce(&[u8]) -> Result<[u8; crypto::SIGNATURE_LEN], KeyError>,
    ) -> Result<SignedReceipt, ReceiptError> {
        self.check()?;
        let body = serde_json::to_vec(self).map_err(|_| ReceiptError::Malformed("not encodable"))?;
        let signature = sign(&signed_bytes(key_id, &body)).map_err(|_| ReceiptError::Forged)?;
        Ok(SignedReceipt { key_id, body: B64.encode(&body), signature: B64.encode(signature) })
    }

    /// A wallet-style card as SVG (UTF-8 text, 360 × variable height): payee, payer, the
    /// amounts by source, the items, and the code, number and check code the finance
    /// authority verifies by, with a QR code of them. Text is XML-escaped.
    pub fn svg(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("票据代码 Code".into(), self.receipt_code.clone()),
            ("票据号码 No.".into(), self.receipt_number.clone()),
            ("校验码 Check".into(), self.check_code.clone()),
            ("开票日期 Date".into(), receipt_date(self.issued_at_ms)),
            ("交款人 Payer".into(), self.payer.name.clone()),
        ];
        if let Some(proxy) = &self.presented_by {
            rows.push(("代办人 Proxy".into(), proxy.name.clone()));
        }
        rows.extend([
            ("合计 Total".into(), self.total.to_string()),
            ("统筹基金 Fund".into(), self.fund.to_string()),
            ("个人账户 Account".into(), self.personal_account.to_string()),
            ("其他基金 Mutual aid".into(), self.mutual_aid.to_string()),
            ("个人现金 Cash".into(), format!("{}  {}", self.cash, self.channel)),
            ("个人自付 Own pay".into(), self.own_pay.to_string()),
            ("个人自费 Self pay".into(), self.self_pay.to_string()),
        ]);
        if let Some(original) = &self.writes_off {
            rows.push(("冲红原票 Writes off".into(), format!("{} {}", original.receipt_code, original.receipt_number)));
        }
        let qr_text = format!(
            "CPR1|{}|{}|{}|{}|{}",
            self.receipt_code,
            self.receipt_number,
            self.check_code,
            receipt_date(self.issued_at_ms),
            self.total.0
        );
        let modules = qr_modules(&qr_text);
        let qr_px = modules.as_ref().map(|m| m.len() as u32 * 3 + 24).unwrap_or(0);
        let line_h = 20u32;
        let items_h = self.items.len() as u32 * 16;
        let height = 96 + rows.len() as u32 * line_h + 24 + items_h + 16 + qr_px;
        let title = match self.kind {
            ReceiptKind::Original => "医疗收费电子票据 Medical e-receipt",
            ReceiptKind::WriteOff => "医疗收费电子票据（冲红）Write-off",
        };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"{height}\" viewBox=\"0 0 360 {height}\" font-family=\"sans-serif\">\n\
             <rect x=\"0\" y=\"0\" width=\"360\" height=\"{height}\" rx=\"16\" fill=\"#ffffff\" stroke=\"#c0392b\"/>\n\
             <text x=\"16\" y=\"32\" font-size=\"15\" font-weight=\"bold\" fill=\"#c0392b\">{}</text>\n\
             <text x=\"16\" y=\"56\" font-size=\"13\">{}</text>\n",
            xml(title),
            xml(&self.payee)
        );
        let mut y = 88;
        for (label, value) in &rows {
            s.push_str(&format!(
                "<text x=\"16\" y=\"{y}\" font-size=\"12\" fill=\"#555555\">{}</text><text x=\"344\" y=\"{y}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n",
                xml(label),
                xml(value)
            ));
            y += line_h;
        }
        y += 8;
        for item in &self.items {
            s.push_str(&format!(
                "<text x=\"16\" y=\"{y}\" font-size=\"10\" fill=\"#555555\">{} × {}</text><text x=\"344\" y=\"{y}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
                xml(&item.name),
                item.quantity,
                item.amount
            ));
            y += 16;
        }
        if let Some(modules) = modules {
            let x0 = (360 - modules.len() as u32 * 3) / 2;
            let y0 = y + 12;
            s.push_str(&format!("<g id=\"verify-qr\" data-text=\"{}\" fill=\"#000000\">", xml(&qr_text)));
            for (r, row) in modules.iter().enumerate() {
                for (c, dark) in row.iter().enumerate() {
                    if *dark {
                        s.push_str(&format!(
                            "<rect x=\"{}\" y=\"{}\" width=\"3\" height=\"3\"/>",
                            x0 + c as u32 * 3,
                            y0 + r as u32 * 3
                        ));
                    }
                }
            }
            s.push_str("</g>\n");
        }
        s.push_str("</svg>\n");
        s
    }
}

/// The receipt's verification string as QR modules (row-major, dark = true).
fn qr_modules(text: &str) -> Option<Vec<Vec<bool>>> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    Some(colors.chunks(width).map(|row| row.iter().map(|c| *c == qrcode::Color::Dark).collect()).collect())
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The bytes the receipt key signs.
pub fn signed_bytes(key_id: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + 2 + body.len());
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(&key_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Verifies a signed receipt against the receipt keys (key id → uncompressed P-256 key) and
/// checks it: format, key, signature, then the decoded receipt's own checks.
pub fn verify(
    signed: &SignedReceipt,
    keys_by_id: &std::collections::HashMap<u16, Vec<u8>>,
) -> Result<Receipt, ReceiptError> {
    if signed.body.len() > MAX_BODY_BYTES * 4 / 3 + 4 {
        return Err(ReceiptError::Malformed("body too large"));
    }
    let body = B64.decode(&signed.body).map_err(|_| ReceiptError::Malformed("body is not base64url"))?;
    let signature = B64.decode(&signed.signature).map_err(|_| ReceiptError::Malformed("signature is not base64url"))?;
    if signature.len() != crypto::SIGNATURE_LEN {
        return Err(ReceiptError::Malformed("signature length"));
    }
    let key = keys_by_id.get(&signed.key_id).ok_or(ReceiptError::UnknownKey)?;
    crypto::verify_p256(key, &signed_bytes(signed.key_id, &body), &signature).map_err(|_| ReceiptError::Forged)?;
    let receipt: Receipt =
        serde_json::from_slice(&body).map_err(|_| ReceiptError::Malformed("body is not a receipt"))?;
    receipt.check()?;
    Ok(receipt)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::voucher::cert::Issuer;

    pub(crate) fn sample() -> Receipt {
        let issued_at_ms = 1_795_000_000_000;
        let (code, number) = ("41990026".to_string(), "0000000001".to_string());
        Receipt {
            version: 1,
            kind: ReceiptKind::Original,
            check_code: check_code(&code, &number, issued_at_ms, Fen(13_345)),
            receipt_code: code,
            receipt_number: number,
            issued_at_ms,
            payer: ReceiptParty { person_id: "P1001".into(), name: "张伟 Zhang Wei".into() },
            presented_by: None,
            link_id: None,
            payee: "示例市第一人民医院 <Demo> & Co".into(),
            bill_id: "bill_1".into(),
            payment_id: "pay_1".into(),
            items: vec![
                ReceiptItem {
                    code: "A10BA02".into(),
                    name: "二甲双胍".into(),
                    category: ItemCategory::A,
                    quantity: 2,
                    amount: Fen(4_780),
                },
                ReceiptItem {
                    code: "C08CA01".into(),
                    name: "氨氯地平".into(),
                    category: ItemCategory::B,
                    quantity: 3,
                    amount: Fen(5_565),
                },
                ReceiptItem {
                    code: "A12AX".into(),
                    name: "钙片".into(),
                    category: ItemCategory::C,
                    quantity: 1,
                    amount: Fen(3_000),
                },
            ],
            total: Fen(13_345),
            fund: Fen(8_320),
            personal_account: Fen(3_000),
            mutual_aid: Fen(0),
            cash: Fen(2_025),
            own_pay: Fen(2_025),
            self_pay: Fen(3_000),
            channel: "card ····4242".into(),
            writes_off: None,
        }
    }

    #[test]
    fn a_signed_receipt_verifies_and_any_change_is_caught() {
        let issuer = Issuer::from_pkcs8(1, &Issuer::generate_pkcs8().unwrap()).unwrap();
        let keys = std::collections::HashMap::from([(1u16, issuer.public_key())]);
        let receipt = sample();
        let signed = receipt.sign(1, |m| issuer.sign(m)).unwrap();
        assert_eq!(verify(&signed, &keys).unwrap(), receipt);
        let mut forged = receipt.clone();
        forged.cash = Fen(0);
        forged.fund = Fen(10_345);
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(verify(&SignedReceipt { body, ..signed.clone() }, &keys), Err(ReceiptError::Forged));
        assert_eq!(verify(&SignedReceipt { key_id: 2, ..signed.clone() }, &keys), Err(ReceiptError::UnknownKey));
        let mut wrong = receipt.clone();
        wrong.check_code = "000000".into();
        assert_eq!(wrong.check(), Err(ReceiptError::CheckCode));
        let mut bad_sum = receipt.clone();
        bad_sum.cash = Fen(2_026);
        assert!(matches!(bad_sum.check(), Err(ReceiptError::Amounts(_))));
    }

    #[test]
    fn the_date_is_china_time_and_the_svg_escapes_text() {
        // 2026-11-30 16:00 UTC is 2026-12-01 00:00 in China.
        assert_eq!(receipt_date(1_796_054_400_000), "20261201");
        assert_eq!(receipt_date(1_796_054_399_999), "20261130");
        let svg = sample().svg();
        assert!(svg.contains("&lt;Demo&gt; &amp; Co"));
        assert!(svg.contains("id=\"verify-qr\""));
        assert!(!svg.contains("<Demo>"));
        // Amounts print their own currency sign, once.
        assert!(svg.contains(&format!(">{}<", sample().total)), "{svg}");
        assert!(!svg.contains("¥¥"), "{svg}");
    }
}
