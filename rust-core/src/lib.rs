//! CarePass core: the domain of a patient's public-insurance app.
//!
//! Pure rules over plain data (`money`, `account`, `keys`), the only I/O in `net` (the
//! platform client) and `store` (sled, sealed values), and [`app::CarePass`] tying them
//! together for the shells. Nothing here knows about FFI; `carepass-ffi` exports it.

pub mod account;
pub mod app;
pub mod bills;
pub mod clock;
pub mod error;
pub mod keys;
pub mod money;
pub mod net;
pub mod pharmacy;
pub mod secrets;
pub mod settlement;
pub mod store;
pub mod voucher;
pub mod wire;

pub use app::{CarePass, Config, Profile};
pub use clock::{Clock, FixedClock, OffsetClock, SystemClock};
pub use error::{CoreError, CoreResult};
pub use money::Fen;
