//! The core's only I/O: the platform client (`net`, with the live stream's parser `sse`), the
//! phone's encrypted store (`store`), where its data key lives (`secrets`), and the clocks
//! that read the system time (`clock`). Nothing here knows the app's flows (`crate::app`).

pub mod clock;
pub mod keys;
pub mod net;
pub mod secrets;
pub mod sse;
pub mod store;
