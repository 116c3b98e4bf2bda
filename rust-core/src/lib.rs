//! CarePass core: the domain of a patient's public-insurance app.
//!
//! - [`domain`]: pure rules over plain data, one room per capability (voucher, bills,
//!   settlement, pharmacy, family, payment) and the shared pieces (money, clock, crypto,
//!   person, account);
//! - [`wire`]: what travels between the phone and the platform, one file per capability;
//! - [`io`]: the platform client and the encrypted store, the only I/O;
//! - [`app`]: [`CarePass`], the composition root the shells open, with one file per
//!   capability's flow and the session (who acts, for whom).
//!
//! Nothing here knows about FFI; `carepass-ffi` exports it. The dependency direction
//! (app → io → wire → domain) is checked by `tests/layering.rs`.

pub mod app;
pub mod domain;
pub mod io;
pub mod wire;

pub use app::error::{CoreError, CoreResult};
pub use app::{CarePass, Config, Profile, QuoteOptions, VerifiedReceipt};
pub use domain::clock::{Clock, FixedClock};
pub use domain::money::Fen;
pub use io::clock::{OffsetClock, SystemClock};
