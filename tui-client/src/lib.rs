//! `taquilla-fan`, the fan's terminal app, as a library so that every screen is tested without
//! a terminal or a server.
//!
//! - [`app`]: the state, the messages and `update(&mut App, Msg)` (the Elm way); commands for
//!   the network are queued, never run, here.
//! - [`seatmap`]: the seat map model: sections, rows, live statuses, cursor and picks.
//! - [`ui`]: `draw(frame, &app)`, pure.
//! - [`qr`]: ticket codes drawn as QR codes a camera reads.
//! - [`net`]: the gRPC work, in background tasks that answer with messages.
//! - [`event`]: one channel for keys, resizes, ticks and network answers, and the run loop.

pub mod app;
pub mod event;
pub mod net;
pub mod qr;
pub mod seatmap;
pub mod ui;
