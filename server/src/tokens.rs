//! Signed credentials, shared with the clients through `taquilla-proto` (so the fan app and
//! venue scanners verify ticket codes with the very code that signs them).

pub use taquilla_proto::signed::*;
