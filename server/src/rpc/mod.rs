//! The gRPC services. Each RPC parses its request into domain values (answering
//! INVALID_ARGUMENT with a sentence that names the field), applies it, and converts the result
//! back; [`convert`] holds the conversions between proto and domain types.

pub mod convert;
pub mod operator;
pub mod sales;
pub mod waiting_room;

use crate::error::ApiError;

/// The answer of an RPC whose behaviour is not built yet: says what is missing.
pub(crate) fn not_built(rpc: &str, missing: &str) -> ApiError {
    ApiError::Unimplemented(format!(
        "{rpc} is not available in this version of the server: {missing} is not built yet"
    ))
}
