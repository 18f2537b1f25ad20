//! The API error type. Services return [`ApiError`]; it is turned into a `tonic::Status` in one
//! place, where internal errors are logged with a reference and shown to callers opaquely.

use tonic::Status;

use crate::store::StoreError;

/// An error a caller sees, with a sentence for a person.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A ticket scanned before: ALREADY_EXISTS, with when and where in the trailers
    /// ([`taquilla_proto::FIRST_SCAN_AT_HEADER`], [`taquilla_proto::FIRST_SCAN_GATE_HEADER`]).
    #[error("{message}")]
    AlreadyScanned {
        message: String,
        at_ms: i64,
        gate: String,
    },
    /// The event's sale has ended (sold out or closed): FAILED_PRECONDITION, marked so
    /// clients can tell it from other refusals ([`taquilla_proto::SALE_ENDED_HEADER`]).
    #[error("{message}")]
    SaleEnded {
        message: String,
        why: taquilla_proto::SaleEnded,
    },
    #[error("{0}")]
    Aborted(String),
    /// Two transactions collided in the database and this one was rolled back: ABORTED to the
    /// caller like a lost race, but the server's doing, not the caller's.
    #[error("{0}")]
    Collision(String),
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after_ms: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// A dependency's circuit breaker is open: fail fast, retry after the hint.
    #[error("{message}")]
    CircuitOpen {
        message: String,
        retry_after_ms: u64,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Whether the call failed on what the caller asked (taken seats, a cap, a bad id), not on
    /// the server or a dependency being down.
    pub fn is_callers(&self) -> bool {
        !matches!(
            self,
            ApiError::Unavailable(_)
                | ApiError::CircuitOpen { .. }
                | ApiError::Internal(_)
                | ApiError::Collision(_)
                | ApiError::ResourceExhausted { .. }
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::Unavailable(
                    "the database is unavailable right now; please retry in a moment".into(),
                )
            }
            StoreError::Busy(detail) => {
                tracing::warn!(%detail, "no database connection came free in time");
                ApiError::Unavailable(
                    "the database is too busy to answer right now; please retry in a moment".into(),
                )
            }
            StoreError::BreakerOpen { retry_in_ms } => ApiError::CircuitOpen {
                message: format!(
                    "the database is not answering, so calls are paused while it recovers; \
                     please retry in {} s (with the same idempotency key, if the call has one)",
                    retry_in_ms.div_ceil(1_000).max(1)
                ),
                retry_after_ms: retry_in_ms,
            },
            StoreError::Conflict(message) => ApiError::Aborted(message),
            StoreError::Collision(detail) => {
                tracing::info!(%detail, "transaction collision");
                ApiError::Collision(
                    "the request collided with another at the same moment; nothing changed, please retry"
                        .into(),
                )
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::AlreadyScanned {
                message,
                at_ms,
                gate,
            } => {
                let mut status = Status::already_exists(message);
                if let Ok(at) = at_ms.to_string().parse() {
                    status
                        .metadata_mut()
                        .insert(taquilla_proto::FIRST_SCAN_AT_HEADER, at);
                }
                // Gate names are checked to be printable ASCII before they are stored.
                if let Ok(gate) = gate.parse() {
                    status
                        .metadata_mut()
                        .insert(taquilla_proto::FIRST_SCAN_GATE_HEADER, gate);
                }
                status
            }
            ApiError::SaleEnded { message, why } => {
                let mut status = Status::failed_precondition(message);
                status.metadata_mut().insert(
                    taquilla_proto::SALE_ENDED_HEADER,
                    tonic::metadata::MetadataValue::from_static(why.as_str()),
                );
                status
            }
            ApiError::Aborted(m) | ApiError::Collision(m) => Status::aborted(m),
            ApiError::ResourceExhausted {
                message,
                retry_after_ms,
            } => with_retry_after(Status::resource_exhausted(message), retry_after_ms),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::CircuitOpen {
                message,
                retry_after_ms,
            } => with_retry_after(Status::unavailable(message), retry_after_ms),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::Unimplemented(m) => Status::unimplemented(m),
            ApiError::Internal(detail) => {
                let reference = uuid::Uuid::new_v4().simple().to_string();
                let reference = &reference[..12];
                tracing::error!(%reference, %detail, "internal error");
                Status::internal(format!(
                    "something went wrong on the server (reference {reference}); it has been logged"
                ))
            }
        }
    }
}

/// Adds the `retry-after-ms` hint clients honour.
fn with_retry_after(mut status: Status, retry_after_ms: u64) -> Status {
    if let Ok(value) = retry_after_ms.to_string().parse() {
        status
            .metadata_mut()
            .insert(taquilla_proto::RETRY_AFTER_MS_HEADER, value);
    }
    status
}

/// Result of an RPC handler body.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_carried_in_metadata() {
        let status = Status::from(ApiError::ResourceExhausted {
            message: "slow down".into(),
            retry_after_ms: 1_500,
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status
                .metadata()
                .get(taquilla_proto::RETRY_AFTER_MS_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("1500")
        );
    }

    #[test]
    fn a_sale_that_ended_says_why_in_metadata() {
        let status = Status::from(ApiError::SaleEnded {
            message: "\"ev\" is sold out".into(),
            why: taquilla_proto::SaleEnded::SoldOut,
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(status.message(), "\"ev\" is sold out");
        assert_eq!(
            taquilla_proto::sale_ended(&status),
            Some(taquilla_proto::SaleEnded::SoldOut)
        );
        let closed = Status::from(ApiError::SaleEnded {
            message: "closed".into(),
            why: taquilla_proto::SaleEnded::Closed,
        });
        assert_eq!(
            taquilla_proto::sale_ended(&closed),
            Some(taquilla_proto::SaleEnded::Closed)
        );
        let other = Status::from(ApiError::FailedPrecondition("over the cap".into()));
        assert_eq!(taquilla_proto::sale_ended(&other), None);
    }

    #[test]
    fn internal_details_are_not_shown() {
        let status = Status::from(ApiError::Internal("password=hunter2 in query".into()));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(status.message().contains("reference"));
    }

    #[test]
    fn only_what_the_caller_asked_for_counts_as_the_callers_failure() {
        // A collision in the database is ABORTED like a lost race, but not the fan's doing:
        // it must not count towards flagging the fan for failed holds.
        let collision = ApiError::from(StoreError::Collision("serialization failure".into()));
        assert!(!collision.is_callers());
        assert_eq!(Status::from(collision).code(), tonic::Code::Aborted);
        assert!(ApiError::Aborted("seat 7 was just taken".into()).is_callers());
        assert!(ApiError::FailedPrecondition("over the cap".into()).is_callers());
        assert!(
            !ApiError::ResourceExhausted {
                message: "busy".into(),
                retry_after_ms: 10
            }
            .is_callers()
        );
    }
}
