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
