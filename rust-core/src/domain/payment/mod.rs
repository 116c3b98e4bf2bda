//! Mixed payment (医保 + 自费): quotes, consent, the payment and leg state machines and
//! receipts. Filled by the payment work.
