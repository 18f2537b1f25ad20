//! Who may call what. Operator RPCs need the operator's bearer token, compared in constant time.
//! A fan's credential (a queue token or admission pass signed by this service) presented to an
//! operator RPC is recognised and refused with PERMISSION_DENIED, so a fan learns that the call
//! is not theirs to make rather than that their credential is broken.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::config::Secret;
use crate::tokens::Signer;

/// Checks the operator's bearer token.
#[derive(Clone)]
pub struct OperatorAuth {
    token_hash: [u8; 32],
    signer: Signer,
}

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorAuth { token: <redacted> }")
    }
}

/// Who the caller proved to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Operator,
}

impl OperatorAuth {
    pub fn new(token: &Secret, signer: Signer) -> OperatorAuth {
        OperatorAuth {
            token_hash: Sha256::digest(token.expose().as_bytes()).into(),
            signer,
        }
    }

    /// Whether `candidate` is the operator token. Both sides are hashed first so the comparison
    /// takes the same time whatever the candidate's length.
    pub fn is_operator_token(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        candidate.ct_eq(&self.token_hash).into()
    }

    /// The bearer token of `authorization`, if the metadata has one.
    fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
        let Some(value) = metadata.get("authorization") else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| {
            Status::unauthenticated("the authorization metadata is not readable text")
        })?;
        match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim()))
            }
            _ => Err(Status::unauthenticated(
                "the authorization metadata must read \"Bearer <operator token>\"",
            )),
        }
    }

    /// Checks that the caller is an operator.
    pub fn check(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        match Self::bearer(metadata)? {
            Some(token) if self.is_operator_token(token) => Ok(Caller::Operator),
            Some(token) => match self.signer.kind_of(token) {
                Some(kind) => Err(Status::permission_denied(format!(
                    "a fan's {} cannot call operator RPCs; they need the operator token",
                    kind.describe()
                ))),
                None => Err(Status::unauthenticated("the operator token is not valid")),
            },
            None if metadata.contains_key(taquilla_proto::ADMISSION_PASS_HEADER) => {
                Err(Status::permission_denied(
                    "an admission pass does not allow operator RPCs; they need the operator token",
                ))
            }
            None => Err(Status::unauthenticated(
                "operator RPCs need the operator token in the authorization metadata (Bearer <token>)",
            )),
        }
    }
}

impl tonic::service::Interceptor for OperatorAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{PassClaims, TokenKind};

    fn auth() -> (OperatorAuth, Signer) {
        let signer = Signer::new(b"0123456789abcdef0123").expect("key");
        (
            OperatorAuth::new(&Secret::new("op-token"), signer.clone()),
            signer,
        )
    }

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().expect("ascii"));
        m
    }

    #[test]
    fn operator_token_passes() {
        let (auth, _) = auth();
        assert_eq!(
            auth.check(&with_auth("Bearer op-token")).ok(),
            Some(Caller::Operator)
        );
        assert_eq!(
            auth.check(&with_auth("bearer op-token")).ok(),
            Some(Caller::Operator)
        );
    }

    #[test]
    fn missing_or_wrong_token_is_unauthenticated() {
        let (auth, _) = auth();
        for m in [
            MetadataMap::new(),
            with_auth("Bearer op-token2"),
            with_auth("Bearer "),
            with_auth("op-token"),
            with_auth("Basic b3A6dG9rZW4="),
        ] {
            let err = auth.check(&m).expect_err("refused");
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{m:?}");
        }
    }

    #[test]
    fn fan_credentials_are_permission_denied() {
        let (auth, signer) = auth();
        let pass = signer.sign(
            TokenKind::AdmissionPass,
            &PassClaims {
                ev: "e".into(),
                fan: "f".into(),
                en: "n".into(),
                iat: 0,
                exp: 1,
            },
        );
        let err = auth
            .check(&with_auth(&format!("Bearer {pass}")))
            .expect_err("refused");
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(
            err.message().contains("admission pass"),
            "{}",
            err.message()
        );

        let mut m = MetadataMap::new();
        m.insert(
            taquilla_proto::ADMISSION_PASS_HEADER,
            pass.parse().expect("ascii"),
        );
        assert_eq!(
            auth.check(&m).expect_err("refused").code(),
            tonic::Code::PermissionDenied
        );
    }
}

/// Metadata key an operator sets to act for a fan (box office, support).
pub const FAN_ID_HEADER: &str = "x-fan-id";

/// A caller of the protected sales RPCs, as proven by their credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An operator; `fan_id` is the fan they act for, when they named one.
    Operator { fan_id: Option<String> },
    /// A fan with a verified, unexpired admission pass.
    Pass(crate::tokens::PassClaims),
}

impl Credential {
    /// Checks the credential covers `event_id` and names the buying fan.
    pub fn buyer_for(&self, event_id: &str) -> Result<Buyer, crate::error::ApiError> {
        use crate::error::ApiError;
        match self {
            Credential::Operator {
                fan_id: Some(fan_id),
            } => Ok(Buyer {
                fan_id: fan_id.clone(),
                operator: true,
            }),
            Credential::Operator { fan_id: None } => Err(ApiError::InvalidArgument(format!(
                "an operator acting for a fan must name the fan in the {FAN_ID_HEADER} metadata"
            ))),
            Credential::Pass(pass) if pass.ev == event_id => Ok(Buyer {
                fan_id: pass.fan.clone(),
                operator: false,
            }),
            Credential::Pass(pass) => Err(ApiError::PermissionDenied(format!(
                "this admission pass is for event {:?}, not {event_id:?}",
                pass.ev
            ))),
        }
    }

    /// The fan this credential speaks for, if it names one (an operator may look at any order).
    pub fn fan_id(&self) -> Option<&str> {
        match self {
            Credential::Operator { fan_id } => fan_id.as_deref(),
            Credential::Pass(pass) => Some(&pass.fan),
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self, Credential::Operator { .. })
    }
}

/// Who is buying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub fan_id: String,
    pub operator: bool,
}

/// The check in front of every sales RPC except `ListEvents`, `GetSeatMap` and
/// `WatchAvailability`. One trait, so that the waiting room can plug in its own rules (is the
/// fan's admission still active?) without the sales handlers changing.
pub trait AdmissionGuard: Send + Sync + std::fmt::Debug + 'static {
    /// Proves who the caller is, or says why they may not call `rpc`.
    fn authenticate(
        &self,
        rpc: &str,
        metadata: &MetadataMap,
        now_ms: i64,
    ) -> Result<Credential, crate::error::ApiError>;
}

/// Accepts a valid, unexpired admission pass signed by this service, or the operator token.
#[derive(Debug, Clone)]
pub struct PassGuard {
    operator: OperatorAuth,
    signer: Signer,
    room: std::sync::Arc<crate::waiting_room::WaitingRoom>,
}

impl PassGuard {
    pub fn new(
        operator: OperatorAuth,
        signer: Signer,
        room: std::sync::Arc<crate::waiting_room::WaitingRoom>,
    ) -> PassGuard {
        PassGuard {
            operator,
            signer,
            room,
        }
    }
}

fn fan_id_header(metadata: &MetadataMap) -> Result<Option<String>, crate::error::ApiError> {
    let Some(value) = metadata.get(FAN_ID_HEADER) else {
        return Ok(None);
    };
    let fan = value
        .to_str()
        .ok()
        .filter(|f| !f.is_empty() && f.len() <= 128)
        .ok_or_else(|| {
            crate::error::ApiError::InvalidArgument(format!(
                "{FAN_ID_HEADER} must be 1 to 128 printable characters"
            ))
        })?;
    Ok(Some(fan.to_string()))
}

impl AdmissionGuard for PassGuard {
    fn authenticate(
        &self,
        rpc: &str,
        metadata: &MetadataMap,
        now_ms: i64,
    ) -> Result<Credential, crate::error::ApiError> {
        use crate::error::ApiError;
        if metadata.contains_key("authorization") {
            self.operator
                .check(metadata)
                .map_err(|status| match status.code() {
                    tonic::Code::PermissionDenied => {
                        ApiError::PermissionDenied(status.message().to_string())
                    }
                    _ => ApiError::Unauthenticated(status.message().to_string()),
                })?;
            return Ok(Credential::Operator {
                fan_id: fan_id_header(metadata)?,
            });
        }
        let Some(pass) = metadata.get(taquilla_proto::ADMISSION_PASS_HEADER) else {
            return Err(ApiError::PermissionDenied(format!(
                "{rpc} needs the admission pass the waiting room gives when it admits you \
                 (metadata {})",
                taquilla_proto::ADMISSION_PASS_HEADER
            )));
        };
        let pass = pass.to_str().map_err(|_| {
            ApiError::Unauthenticated("the admission pass is not readable text".into())
        })?;
        let claims: crate::tokens::PassClaims = self
            .signer
            .verify(crate::tokens::TokenKind::AdmissionPass, pass)
            .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
        if claims.exp <= now_ms {
            return Err(ApiError::Unauthenticated(format!(
                "your admission pass expired {} s ago; rejoin the queue for a new one",
                (now_ms - claims.exp) / 1_000
            )));
        }
        // An ended admission (paid, left, no-show) may not start a purchase, but may finish or
        // look up one it started: a fan whose Pay answer was lost must be able to retry it with
        // the same key or read the order. Holds, orders and payments carry their own deadlines
        // and ownership checks.
        if rpc == "HoldSeats" && !self.room.pass_active(&claims) {
            return Err(ApiError::PermissionDenied(
                "your admission has ended (you paid, left, or did not hold seats in time); \
                 join the queue again"
                    .into(),
            ));
        }
        Ok(Credential::Pass(claims))
    }
}
