//! The code to show: [`CarePass::current_code`] for one screen draw and
//! [`CarePass::code_stream`] for a screen that shows the code live — the current code at
//! once, then a new one at each rotation on platform time, each code once, until the session
//! ends. One [`CodeRotator`] per core keeps the current code of each (subject, purpose,
//! profile, proxy) for its period, so redrawing costs no signature. The code itself is made
//! by the pure `crate::domain::voucher::rotator::make_code`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use super::session::{core_closed, session_ended};
use super::streams::{stream, CoreStream, Sink};
use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::family::Scope;
use crate::domain::voucher::format::{device_id_to_bytes, link_id_to_bytes};
use crate::domain::voucher::rotator::{make_code, CodeSource, DisplayCode};
use crate::domain::voucher::{self, Purpose, VoucherError};

/// The longest a code stream sleeps before looking at the clock again (a phone clock that
/// jumps is noticed within this).
const MAX_WAIT_MS: i64 = 5_000;
/// The shortest: a rotation is never redrawn in a busy loop.
const MIN_WAIT_MS: i64 = 50;

impl CarePass {
    /// The code to show now for `purpose` (for `subject`: `None` is the signed-in person),
    /// made on this device with no network, on platform time. The same code comes back until
    /// its period ends.
    pub fn current_code(&self, purpose: Purpose, offline: bool, subject: Option<&str>) -> CoreResult<DisplayCode> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::ShowCode)?;
        let enrolment = self.enrolment_of(&actor.person_id)?.ok_or(CoreError::NotEnrolled)?;
        let device_id = device_id_to_bytes(&enrolment.device_id).map_err(VoucherError::from)?;
        let certificate = enrolment.certificate.as_deref().map(super::session::decode_certificate).transpose()?;
        let source = CodeSource {
            keys: self.keys.as_ref(),
            device_id,
            certificate: certificate.as_ref(),
            period_s: voucher::DEFAULT_PERIOD_S,
        };
        // A relative's code carries the link it is shown under (`docs/voucher-code.md`).
        let link = match self.link_for(&actor, &subject)? {
            Some(link) if subject != actor.person_id => {
                Some(link_id_to_bytes(&link.link_id).map_err(VoucherError::from)?)
            }
            _ => None,
        };
        self.rotator.current(&subject, &source, purpose, offline, link, self.client.server_now_ms())
    }

    /// The codes to show for `purpose`: the current one at once, then each new one at its
    /// rotation (platform time), each once. Ends with `NotSignedIn` or `SessionExpired` when
    /// the session ends, with `Closed` when the core closes, or with the error that stopped
    /// making codes. Holds the core weakly: dropping every other handle on it ends the stream.
    pub fn code_stream(
        self: &Arc<Self>,
        purpose: Purpose,
        offline: bool,
        subject: Option<String>,
    ) -> CoreStream<DisplayCode> {
        let core = Arc::downgrade(self);
        let mut session = self.session.subscribe();
        let mut closed = self.closed.subscribe();
        stream(move |sink: Sink<DisplayCode>| async move {
            let mut shown: Option<String> = None;
            loop {
                let wait_ms = {
                    let Some(core) = core.upgrade() else { return Err(CoreError::Closed) };
                    let code = core.current_code(purpose, offline, subject.as_deref())?;
                    let now = core.platform_now_ms();
                    if shown.as_deref() != Some(code.text.as_str()) {
                        shown = Some(code.text.clone());
                        if !sink.send(code.clone()).await {
                            return Ok(());
                        }
                    }
                    code.refresh_at_ms.saturating_sub(now).clamp(MIN_WAIT_MS, MAX_WAIT_MS)
                };
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                    ended = session_ended(&mut session) => return Err(ended),
                    _ = core_closed(&mut closed) => return Err(CoreError::Closed),
                    _ = sink.closed() => return Ok(()),
                }
            }
        })
    }
}

/// (subject, purpose, offline, link).
type CodeKey = (String, Purpose, bool, Option<[u8; 8]>);

/// Hands out the current code, making a new one only when the period changes, so redrawing a
/// screen every second costs no signature. One code is kept per (subject, purpose, profile,
/// link), so two screens asking for different codes do not replace each other's.
pub struct CodeRotator {
    current: Mutex<HashMap<CodeKey, DisplayCode>>,
    rng: SystemRandom,
}

impl Default for CodeRotator {
    fn default() -> Self {
        CodeRotator { current: Mutex::new(HashMap::new()), rng: SystemRandom::new() }
    }
}

impl CodeRotator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn current(
        &self,
        subject: &str,
        source: &CodeSource<'_>,
        purpose: Purpose,
        offline: bool,
        link: Option<[u8; 8]>,
        now_ms: i64,
    ) -> CoreResult<DisplayCode> {
        let key = (subject.to_string(), purpose, offline, link);
        if let Ok(guard) = self.current.lock() {
            if let Some(code) = guard.get(&key) {
                if code.valid_from_ms <= now_ms && now_ms < code.refresh_at_ms {
                    return Ok(code.clone());
                }
            }
        }
        let mut nonce = [0u8; 4];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| crate::domain::crypto::KeyError::Platform("random generator failed".into()))?;
        let code = make_code(source, purpose, offline, link, now_ms, nonce).map_err(CoreError::from)?;
        if let Ok(mut guard) = self.current.lock() {
            guard.insert(key, code.clone());
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::SoftwareDeviceKey;

    const NOW: i64 = 1_795_440_000_000;

    #[test]
    fn a_code_is_reused_within_its_period_and_replaced_after() {
        let (key, _) = SoftwareDeviceKey::generate().unwrap();
        let source = CodeSource { keys: &key, device_id: [1; 8], certificate: None, period_s: 30 };
        let rotator = CodeRotator::new();
        let a = rotator.current("P1", &source, Purpose::Registration, false, None, NOW).unwrap();
        let b = rotator.current("P1", &source, Purpose::Registration, false, None, NOW + 29_000).unwrap();
        assert_eq!(a, b);
        let c = rotator.current("P1", &source, Purpose::Registration, false, None, a.refresh_at_ms).unwrap();
        assert_ne!(a.text, c.text);
        assert_eq!(c.valid_from_ms, a.refresh_at_ms);
        let d = rotator.current("P1", &source, Purpose::PharmacyPurchase, false, None, a.refresh_at_ms).unwrap();
        assert_eq!(d.purpose, Purpose::PharmacyPurchase);
        // Asking for another purpose does not replace the first one's code.
        assert_eq!(rotator.current("P1", &source, Purpose::Registration, false, None, a.refresh_at_ms + 1).unwrap(), c);
        assert_eq!(a.seconds_left(NOW), ((a.refresh_at_ms - NOW + 999) / 1000) as u32);
    }
}
