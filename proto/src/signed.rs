//! Signed credentials: queue tokens (a fan's place in line), admission passes (permission to
//! buy) and ticket codes. The server signs them; anyone holding the key verifies them, offline
//! (a venue scanner verifies ticket codes with the event's ticket key, see [`ticket_key`]). Each is `tq1.<kind>.<claims>.<mac>` where `claims` is base64url JSON
//! and `mac` is HMAC-SHA256 over everything before it, verified in constant time. The kind is
//! inside the signed part, so a token of one kind can never be replayed as another.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; anything longer is refused before any work is done.
pub const MAX_TOKEN_LEN: usize = 2_048;

const PREFIX: &str = "tq1";

/// What a signed token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A place in an event's queue.
    Queue,
    /// Admission to an event's sales RPCs.
    AdmissionPass,
    /// A ticket for one seat.
    Ticket,
    /// A proof-of-work challenge handed to a joining fan.
    Challenge,
}

impl TokenKind {
    fn tag(self) -> &'static str {
        match self {
            TokenKind::Queue => "q",
            TokenKind::AdmissionPass => "p",
            TokenKind::Ticket => "t",
            TokenKind::Challenge => "c",
        }
    }

    fn from_tag(tag: &str) -> Option<TokenKind> {
        match tag {
            "q" => Some(TokenKind::Queue),
            "p" => Some(TokenKind::AdmissionPass),
            "t" => Some(TokenKind::Ticket),
            "c" => Some(TokenKind::Challenge),
            _ => None,
        }
    }

    /// A person's name for the kind.
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::Queue => "queue token",
            TokenKind::AdmissionPass => "admission pass",
            TokenKind::Ticket => "ticket code",
            TokenKind::Challenge => "proof-of-work challenge",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the {0} is not in the expected format")]
    Malformed(&'static str),
    #[error("a {found} was given where a {expected} is needed")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("the {0} was not issued by this service or has been altered")]
    BadSignature(&'static str),
}

/// Claims of a queue token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueueClaims {
    /// Event id.
    pub ev: String,
    /// Queue entry id.
    pub en: String,
    /// Hex SHA-256 of the fan's fingerprint.
    pub fp: String,
    /// Issued at (Unix ms).
    pub iat: i64,
}

/// Claims of an admission pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PassClaims {
    /// Event id.
    pub ev: String,
    /// The fan's id (the queue entry's fingerprint hash): holds and orders belong to it.
    pub fan: String,
    /// Queue entry id.
    pub en: String,
    /// Issued at (Unix ms).
    pub iat: i64,
    /// Expires at (Unix ms).
    pub exp: i64,
}

/// Signs and verifies tokens with one secret key.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer { key: <redacted> }")
    }
}

impl Signer {
    /// A signer with the given secret key (at least 16 bytes).
    pub fn new(key: &[u8]) -> Result<Signer, String> {
        if key.len() < 16 {
            return Err(format!(
                "the signing key is {} bytes long; it needs at least 16 (32 random bytes recommended)",
                key.len()
            ));
        }
        Ok(Signer { key: key.into() })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// Signs `claims` as a token of `kind`.
    pub fn sign<C: Serialize>(&self, kind: TokenKind, claims: &C) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let body = format!("{PREFIX}.{}.{}", kind.tag(), URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Splits and authenticates a token, returning its kind and raw claims.
    fn open(
        &self,
        token: &str,
        expected: &'static str,
    ) -> Result<(TokenKind, Vec<u8>), TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed(expected));
        }
        let (body, tag) = token
            .rsplit_once('.')
            .ok_or(TokenError::Malformed(expected))?;
        let mut parts = body.splitn(3, '.');
        let (Some(PREFIX), Some(kind), Some(claims)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(expected));
        };
        let kind = TokenKind::from_tag(kind).ok_or(TokenError::Malformed(expected))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed(expected))?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature(expected))?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| TokenError::Malformed(expected))?;
        Ok((kind, claims))
    }

    /// Verifies a token of `kind` and decodes its claims.
    pub fn verify<C: DeserializeOwned>(
        &self,
        kind: TokenKind,
        token: &str,
    ) -> Result<C, TokenError> {
        let expected = kind.describe();
        let (found, claims) = self.open(token, expected)?;
        if found != kind {
            return Err(TokenError::WrongKind {
                expected,
                found: found.describe(),
            });
        }
        serde_json::from_slice(&claims).map_err(|_| TokenError::Malformed(expected))
    }

    /// The kind of a genuine token signed by this key, or `None` for anything else.
    pub fn kind_of(&self, token: &str) -> Option<TokenKind> {
        self.open(token, "token").ok().map(|(kind, _)| kind)
    }
}

/// Claims of a proof-of-work challenge: bound to one event and one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChallengeClaims {
    /// Event id.
    pub ev: String,
    /// Hex SHA-256 of the fingerprint it was issued to.
    pub fp: String,
    /// Leading zero bits required.
    pub bits: u32,
    /// Expires at (Unix ms).
    pub exp: i64,
}

/// Leading zero bits of SHA-256(`challenge` ":" `nonce`): what a proof of work must maximise.
pub fn pow_zero_bits(challenge: &str, nonce: &str) -> u32 {
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    let mut bits = 0;
    for byte in digest {
        if byte == 0 {
            bits += 8;
        } else {
            bits += byte.leading_zeros();
            break;
        }
    }
    bits
}

/// Solves a `Join` proof-of-work challenge: the solution to send back with the next `Join`.
/// CPU-bound by design; async callers run it on a blocking thread.
pub fn solve_challenge(challenge: &crate::v1::PowChallenge) -> crate::v1::PowSolution {
    crate::v1::PowSolution {
        challenge: challenge.challenge.clone(),
        nonce: solve_pow(&challenge.challenge, challenge.difficulty_bits),
    }
}

/// Finds a nonce giving at least `bits` leading zero bits (what a fan's client runs).
pub fn solve_pow(challenge: &str, bits: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| pow_zero_bits(challenge, nonce) >= bits)
        .unwrap_or_default()
}

/// Claims of a ticket code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TicketClaims {
    /// Event id.
    pub ev: String,
    /// Seat id within the event.
    pub seat: u32,
    /// Order id.
    pub ord: String,
    /// Ticket id.
    pub tk: String,
    /// Issued at (Unix ms).
    pub iat: i64,
}

/// The key that signs (and verifies) one event's ticket codes, derived from the service's
/// signing key. Giving it to a venue's scanners lets them check that event's tickets offline
/// without being able to forge queue tokens, passes or other events' tickets.
pub fn ticket_key(signing_key: &[u8], event_id: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(signing_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"taquilla ticket key\n");
    mac.update(event_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Verifies a ticket code offline with its event's ticket key and returns what it grants.
pub fn verify_ticket(code: &str, event_ticket_key: &[u8; 32]) -> Result<TicketClaims, TokenError> {
    Signer {
        key: event_ticket_key.as_slice().into(),
    }
    .verify(TokenKind::Ticket, code)
}

/// Reads a ticket code's claims without verifying it (to show them; never to admit anyone).
pub fn peek_ticket(code: &str) -> Option<TicketClaims> {
    peek(code, TokenKind::Ticket)
}

/// Reads an admission pass's claims without verifying it (a client showing its own pass, or a
/// load generator timing admissions); never to admit anyone.
pub fn peek_pass(pass: &str) -> Option<PassClaims> {
    peek(pass, TokenKind::AdmissionPass)
}

fn peek<C: DeserializeOwned>(token: &str, kind: TokenKind) -> Option<C> {
    let (body, _) = token.rsplit_once('.')?;
    let claims = body.strip_prefix(&format!("{PREFIX}.{}.", kind.tag()))?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}

/// Hex SHA-256 of a string (fingerprints are stored and signed only as hashes).
pub fn sha256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_solved_challenge_has_the_asked_zero_bits() {
        let challenge = crate::v1::PowChallenge {
            challenge: "ch-42".into(),
            difficulty_bits: 10,
            expires_at_unix_ms: 0,
        };
        let solution = solve_challenge(&challenge);
        assert_eq!(solution.challenge, "ch-42");
        assert!(pow_zero_bits("ch-42", &solution.nonce) >= 10);
    }

    use super::*;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef").expect("key")
    }

    fn pass() -> PassClaims {
        PassClaims {
            ev: "lux-mad-2026-03-30".into(),
            fan: sha256_hex("fan-1"),
            en: "e1".into(),
            iat: 1,
            exp: 2,
        }
    }

    #[test]
    fn round_trip() {
        let s = signer();
        let token = s.sign(TokenKind::AdmissionPass, &pass());
        assert!(token.starts_with("tq1.p."));
        assert_eq!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &token),
            Ok(pass())
        );
        assert_eq!(s.kind_of(&token), Some(TokenKind::AdmissionPass));
    }

    #[test]
    fn tampering_is_detected() {
        let s = signer();
        let token = s.sign(TokenKind::AdmissionPass, &pass());
        // Re-sign different claims' body with the old tag.
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&PassClaims {
                exp: i64::MAX,
                ..pass()
            })
            .expect("json"),
        );
        let tag = token.rsplit_once('.').expect("tag").1;
        let forged = format!("tq1.p.{forged_claims}.{tag}");
        assert_eq!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &forged),
            Err(TokenError::BadSignature("admission pass"))
        );
        // A token from another key.
        let other = Signer::new(b"another key of sixteen+ bytes").expect("key");
        let foreign = other.sign(TokenKind::AdmissionPass, &pass());
        assert!(matches!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &foreign),
            Err(TokenError::BadSignature(_))
        ));
        assert_eq!(s.kind_of(&foreign), None);
    }

    #[test]
    fn kinds_cannot_be_swapped() {
        let s = signer();
        let token = s.sign(TokenKind::Queue, &pass());
        assert_eq!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &token),
            Err(TokenError::WrongKind {
                expected: "admission pass",
                found: "queue token"
            })
        );
        // Changing the kind tag breaks the signature.
        let relabelled = token.replacen("tq1.q.", "tq1.p.", 1);
        assert!(matches!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &relabelled),
            Err(TokenError::BadSignature(_))
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let s = signer();
        for junk in [
            "",
            ".",
            "tq1",
            "tq1.p",
            "tq1.p.x",
            "tq1.z.e30.AAAA",
            "a.b.c.d",
            "tq1.p.!!.@@",
        ] {
            assert!(
                s.verify::<PassClaims>(TokenKind::AdmissionPass, junk)
                    .is_err(),
                "{junk}"
            );
            assert_eq!(s.kind_of(junk), None);
        }
        assert!(
            s.verify::<PassClaims>(TokenKind::AdmissionPass, &"a".repeat(5_000))
                .is_err()
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Signer::new(b"short").is_err());
    }

    #[test]
    fn tickets_verify_with_their_event_key_only() {
        let service_key = b"0123456789abcdef0123456789abcdef";
        let key = ticket_key(service_key, "ev-1");
        let claims = TicketClaims {
            ev: "ev-1".into(),
            seat: 7,
            ord: "o".into(),
            tk: "t".into(),
            iat: 1,
        };
        let code = Signer::new(&key)
            .expect("key")
            .sign(TokenKind::Ticket, &claims);
        assert_eq!(verify_ticket(&code, &key), Ok(claims.clone()));
        assert_eq!(peek_ticket(&code), Some(claims));
        let other_event = ticket_key(service_key, "ev-2");
        assert!(verify_ticket(&code, &other_event).is_err());
        // The service key itself does not verify tickets: scanners get only event keys.
        assert!(s_verify_with_service_key(service_key, &code).is_err());
    }

    fn s_verify_with_service_key(key: &[u8], code: &str) -> Result<TicketClaims, TokenError> {
        Signer::new(key)
            .expect("key")
            .verify(TokenKind::Ticket, code)
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in ".{0,300}") {
            let s = signer();
            let _ = s.verify::<PassClaims>(TokenKind::AdmissionPass, &input);
            let _ = s.verify::<QueueClaims>(TokenKind::Queue, &input);
            let _ = s.verify::<TicketClaims>(TokenKind::Ticket, &input);
            let _ = s.kind_of(&input);
            let _ = peek_ticket(&input);
        }

        /// Changing any one character of a signed pass makes it fail verification (or, when the
        /// change lands in base64 padding bits that decode to the same bytes, verify to the very
        /// same claims): never a different set of claims, never a panic.
        #[test]
        fn a_tampered_pass_never_verifies_as_other_claims(
            index in 0usize..400,
            replacement in proptest::char::range('!', '~'),
            fan in "[a-z0-9]{1,40}",
        ) {
            let s = signer();
            let claims = PassClaims { fan, ..pass() };
            let token = s.sign(TokenKind::AdmissionPass, &claims);
            let mut chars: Vec<char> = token.chars().collect();
            let at = index % chars.len();
            chars[at] = replacement;
            let tampered: String = chars.into_iter().collect();
            if let Ok(verified) = s.verify::<PassClaims>(TokenKind::AdmissionPass, &tampered) {
                proptest::prop_assert_eq!(verified, claims);
            }
            // A pass is never accepted as another kind of token.
            proptest::prop_assert!(s.verify::<QueueClaims>(TokenKind::Queue, &token).is_err());
        }
    }
}
