//! Ticket codes a door scanner checks offline: `tq2.<kid>.<claims>.<signature>`, where
//! `claims` is base64url JSON ([`TicketClaims`]) and `signature` is Ed25519 over everything
//! before it, by the ticket key named `kid`. A scanner holds only public keys (the file
//! [`PublicKeys`] that `taquilla-ops tickets keys export` writes), so it can check a code but
//! never make one.
//!
//! Keys are rotated without reissuing tickets: a new key signs from then on while the older
//! ones keep verifying the codes they signed; a key retired (say, one whose device was lost)
//! verifies nothing any more. The private half of each key is derived from the service's
//! secret and the key id ([`TicketSigningKey::derive`]), so every node of a sale signs with
//! the same keys and no private key is stored anywhere.
//!
//! Codes issued earlier as HMAC tokens (`tq1.t.…`, see [`crate::signed::verify_ticket`]) are
//! verified by the server until their event has passed.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use crate::signed::TicketClaims;

/// The prefix of an Ed25519 ticket code.
pub const PREFIX: &str = "tq2";

/// The `format` of a public keys file.
pub const KEYS_FORMAT: &str = "taquilla-ticket-keys/1";

/// Longest code accepted; anything longer is refused before any work is done.
const MAX_CODE_LEN: usize = 1_024;

/// Why a ticket code was refused, in words a door steward can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketCodeError {
    #[error("this is not a ticket code (expected tq2.<key>.<claims>.<signature>)")]
    Malformed,
    #[error(
        "this is an older ticket code (tq1); only the server can check it (taquilla-ops tickets check-in)"
    )]
    Legacy,
    #[error("the code is signed by key {0:?}, which the keys file does not have")]
    UnknownKey(String),
    #[error("the code is signed by key {kid:?}, retired at {retired_at}: refuse it")]
    RetiredKey { kid: String, retired_at: String },
    #[error("the code was not signed by this key or has been altered: refuse it")]
    BadSignature,
}

/// A key id: 1 to 16 of `[a-z0-9-]`.
pub fn check_kid(kid: &str) -> Result<(), String> {
    if kid.is_empty()
        || kid.len() > 16
        || !kid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "key id {kid:?} must be 1 to 16 lowercase letters, digits or dashes"
        ));
    }
    Ok(())
}

/// A ticket signing key: one key id's Ed25519 private key.
#[derive(Clone)]
pub struct TicketSigningKey {
    kid: String,
    key: SigningKey,
}

impl fmt::Debug for TicketSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TicketSigningKey {{ kid: {:?}, key: <redacted> }}",
            self.kid
        )
    }
}

impl TicketSigningKey {
    /// The key `kid` derived from the service's secret: HMAC-SHA256(secret, label ‖ kid) is the
    /// Ed25519 seed. Every node with the same secret derives the same key.
    pub fn derive(secret: &[u8], kid: &str) -> TicketSigningKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"taquilla ticket ed25519 key\n");
        mac.update(kid.as_bytes());
        let seed: [u8; 32] = mac.finalize().into_bytes().into();
        TicketSigningKey {
            kid: kid.to_string(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, base64url (what a keys file carries).
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// Signs a ticket's claims into a code.
    pub fn sign(&self, claims: &TicketClaims) -> String {
        // Serializing a plain struct of strings and integers cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let body = format!("{PREFIX}.{}.{}", self.kid, URL_SAFE_NO_PAD.encode(json));
        let signature = self.key.sign(body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new tickets (one key at a time) and verifies.
    Active,
    /// Verifies the tickets it signed; signs no more.
    Verifying,
    /// Verifies nothing: codes it signed are refused.
    Retired,
}

impl KeyState {
    /// The state's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Verifying => "verifying",
            KeyState::Retired => "retired",
        }
    }

    /// The state named `name`.
    pub fn from_name(name: &str) -> Option<KeyState> {
        match name {
            "active" => Some(KeyState::Active),
            "verifying" => Some(KeyState::Verifying),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// One public key in a keys file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key id, as in the codes it signed.
    pub kid: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    pub state: KeyState,
    /// When the key was made (Unix ms).
    pub created_at_ms: i64,
    /// When it was retired (Unix ms), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at_ms: Option<i64>,
}

/// The public keys a door scanner checks codes with: every key the service has had, retired
/// ones included (so their codes are refused as retired, not as unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// [`KEYS_FORMAT`].
    pub format: String,
    pub keys: Vec<PublicKey>,
}

impl PublicKeys {
    /// A keys file holding `keys`.
    pub fn new(keys: Vec<PublicKey>) -> PublicKeys {
        PublicKeys {
            format: KEYS_FORMAT.into(),
            keys,
        }
    }

    /// Reads a keys file; the error says what is wrong with it.
    pub fn from_json(text: &str) -> Result<PublicKeys, String> {
        let keys: PublicKeys =
            serde_json::from_str(text).map_err(|e| format!("not a ticket keys file: {e}"))?;
        if keys.format != KEYS_FORMAT {
            return Err(format!(
                "the keys file's format is {:?}; this program reads {KEYS_FORMAT:?}",
                keys.format
            ));
        }
        for key in &keys.keys {
            check_kid(&key.kid)?;
            decode_public_key(&key.public_key)
                .map_err(|why| format!("key {:?}: {why}", key.kid))?;
        }
        Ok(keys)
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        // A struct of strings, integers and enums always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks a code against these keys and returns what it grants.
    pub fn verify(&self, code: &str) -> Result<(TicketClaims, &PublicKey), TicketCodeError> {
        let code = code.trim();
        if code.starts_with("tq1.") {
            return Err(TicketCodeError::Legacy);
        }
        let parts = split(code)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == parts.kid)
            .ok_or_else(|| TicketCodeError::UnknownKey(parts.kid.to_string()))?;
        let verifying =
            decode_public_key(&key.public_key).map_err(|_| TicketCodeError::BadSignature)?;
        verifying
            .verify_strict(parts.body.as_bytes(), &parts.signature)
            .map_err(|_| TicketCodeError::BadSignature)?;
        if key.state == KeyState::Retired {
            return Err(TicketCodeError::RetiredKey {
                kid: key.kid.clone(),
                retired_at: key
                    .retired_at_ms
                    .map(crate::display::utc_time)
                    .unwrap_or_else(|| "an unknown time".into()),
            });
        }
        Ok((parts.claims, key))
    }
}

/// The key id a code says signed it, if it is an Ed25519 ticket code at all.
pub fn kid_of(code: &str) -> Option<&str> {
    let rest = code.trim().strip_prefix(PREFIX)?.strip_prefix('.')?;
    rest.split('.').next()
}

struct Parts<'a> {
    body: &'a str,
    kid: &'a str,
    claims: TicketClaims,
    signature: ed25519_dalek::Signature,
}

fn split(code: &str) -> Result<Parts<'_>, TicketCodeError> {
    if code.len() > MAX_CODE_LEN {
        return Err(TicketCodeError::Malformed);
    }
    let (body, signature) = code.rsplit_once('.').ok_or(TicketCodeError::Malformed)?;
    let mut fields = body.splitn(3, '.');
    let (Some(PREFIX), Some(kid), Some(claims)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(TicketCodeError::Malformed);
    };
    check_kid(kid).map_err(|_| TicketCodeError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
        .ok_or(TicketCodeError::Malformed)?;
    let claims = URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TicketCodeError::Malformed)?;
    Ok(Parts {
        body,
        kid,
        claims,
        signature,
    })
}

fn decode_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the public key is not 32 bytes of base64url")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "the public key is not an Ed25519 key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> TicketClaims {
        TicketClaims {
            ev: "lux-mad-2026-03-30".into(),
            seat: 4_211,
            ord: "o_123".into(),
            tk: "t_456".into(),
            iat: 1_774_897_200_000,
        }
    }

    fn public(key: &TicketSigningKey, state: KeyState) -> PublicKey {
        PublicKey {
            kid: key.kid().into(),
            public_key: key.public_key(),
            state,
            created_at_ms: 1,
            retired_at_ms: (state == KeyState::Retired).then_some(1_774_897_200_000),
        }
    }

    #[test]
    fn a_code_verifies_with_the_public_keys_file_alone() {
        let k1 = TicketSigningKey::derive(SECRET, "k1");
        let code = k1.sign(&claims());
        assert!(code.starts_with("tq2.k1."), "{code}");
        let file = PublicKeys::new(vec![public(&k1, KeyState::Active)]).to_json();
        assert!(!file.contains("secret"), "{file}");
        let keys = PublicKeys::from_json(&file).expect("the file reads back");
        let (got, key) = keys.verify(&code).expect("valid");
        assert_eq!(got, claims());
        assert_eq!(key.kid, "k1");
        assert_eq!(kid_of(&code), Some("k1"));
    }

    #[test]
    fn every_node_derives_the_same_keys_and_each_kid_its_own() {
        let a = TicketSigningKey::derive(SECRET, "k1");
        let b = TicketSigningKey::derive(SECRET, "k1");
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(
            a.public_key(),
            TicketSigningKey::derive(SECRET, "k2").public_key()
        );
        assert_ne!(
            a.public_key(),
            TicketSigningKey::derive(b"another secret, sixteen+", "k1").public_key()
        );
    }

    #[test]
    fn a_tampered_code_is_refused() {
        let k1 = TicketSigningKey::derive(SECRET, "k1");
        let keys = PublicKeys::new(vec![public(&k1, KeyState::Active)]);
        let code = k1.sign(&claims());
        // Another seat in the claims, the signature kept.
        let (body, signature) = code.rsplit_once('.').expect("dots");
        let (head, _) = body.rsplit_once('.').expect("dots");
        let forged_claims = TicketClaims {
            seat: 1,
            ..claims()
        };
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json"))
        );
        assert_eq!(keys.verify(&forged), Err(TicketCodeError::BadSignature));
        // One character of the signature changed.
        let mut flipped = code.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert!(keys.verify(&flipped).is_err());
        // Signed by a key of another secret under the same id.
        let impostor = TicketSigningKey::derive(b"another secret, sixteen+", "k1");
        assert_eq!(
            keys.verify(&impostor.sign(&claims())),
            Err(TicketCodeError::BadSignature)
        );
        for junk in [
            "",
            "tq2",
            "tq2.k1.e30.AAAA",
            "tq2.K1.e30.AAAA",
            "hello.world",
        ] {
            assert_eq!(keys.verify(junk), Err(TicketCodeError::Malformed), "{junk}");
        }
        assert_eq!(keys.verify("tq1.t.e30.AAAA"), Err(TicketCodeError::Legacy));
    }

    #[test]
    fn rotation_keeps_old_codes_and_retirement_refuses_them() {
        let k1 = TicketSigningKey::derive(SECRET, "k1");
        let k2 = TicketSigningKey::derive(SECRET, "k2");
        let old = k1.sign(&claims());
        let new = k2.sign(&claims());
        let rotated = PublicKeys::new(vec![
            public(&k1, KeyState::Verifying),
            public(&k2, KeyState::Active),
        ]);
        assert!(rotated.verify(&old).is_ok(), "rotated out, still verifying");
        assert!(rotated.verify(&new).is_ok());
        let retired = PublicKeys::new(vec![
            public(&k1, KeyState::Retired),
            public(&k2, KeyState::Active),
        ]);
        match retired.verify(&old) {
            Err(TicketCodeError::RetiredKey { kid, retired_at }) => {
                assert_eq!(kid, "k1");
                assert_eq!(retired_at, "2026-03-30 19:00 UTC");
            }
            other => panic!("expected a retired key, got {other:?}"),
        }
        assert!(retired.verify(&new).is_ok());
        let without_k1 = PublicKeys::new(vec![public(&k2, KeyState::Active)]);
        assert_eq!(
            without_k1.verify(&old),
            Err(TicketCodeError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn a_bad_keys_file_says_what_is_wrong() {
        assert!(
            PublicKeys::from_json("{}")
                .expect_err("empty")
                .contains("not a ticket keys file")
        );
        let k1 = TicketSigningKey::derive(SECRET, "k1");
        let mut keys = PublicKeys::new(vec![public(&k1, KeyState::Active)]);
        keys.format = "something-else/9".into();
        assert!(
            PublicKeys::from_json(&keys.to_json())
                .expect_err("format")
                .contains("format")
        );
        let mut keys = PublicKeys::new(vec![public(&k1, KeyState::Active)]);
        keys.keys[0].public_key = "AAAA".into();
        assert!(
            PublicKeys::from_json(&keys.to_json())
                .expect_err("short key")
                .contains("32 bytes")
        );
    }

    proptest::proptest! {
        /// Whatever is scanned, checking it answers (never a panic), and only a code signed by
        /// a key of the file is accepted.
        #[test]
        fn any_scan_is_answered(text in "\\PC{0,300}") {
            let k1 = TicketSigningKey::derive(SECRET, "k1");
            let keys = PublicKeys::new(vec![public(&k1, KeyState::Active)]);
            proptest::prop_assert!(keys.verify(&text).is_err());
        }
    }
}
