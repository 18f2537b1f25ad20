//! The gRPC services. Each RPC parses its request into domain values (answering
//! INVALID_ARGUMENT with a sentence that names the field), applies it, and converts the result
//! back; [`crate::convert`] holds the conversions between proto and domain types, and
//! [`shared`] the helpers the services share.

pub mod operator;
pub mod sales;
pub mod shared;
pub mod waiting_room;
