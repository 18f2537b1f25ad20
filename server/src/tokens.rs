//! Signed credentials, shared with the clients through `taquilla-proto` (so the fan app and
//! venue scanners verify ticket codes with the very code that signs them).

pub use taquilla_proto::signed::*;

use crate::config::Secret;

/// The keys of the ticket codes the server issues: each event's is derived from the server's
/// secret ([`ticket_key`]), so one event's key signs nothing of another's.
#[derive(Debug, Clone)]
pub struct TicketKeys {
    secret: Secret,
    /// The server's own signer, should a derived key be refused.
    fallback: Signer,
}

impl TicketKeys {
    /// Keys derived from `secret`; `fallback` is the server's own signer.
    pub fn new(secret: Secret, fallback: Signer) -> TicketKeys {
        TicketKeys { secret, fallback }
    }

    /// The signer of one event's ticket codes.
    pub fn signer(&self, event_id: &str) -> Signer {
        let key = ticket_key(self.secret.expose().as_bytes(), event_id);
        // A derived key is 32 bytes, above the minimum.
        Signer::new(&key).unwrap_or_else(|_| self.fallback.clone())
    }
}
