//! Taquilla's gRPC API, package `taquilla.v1`: the generated prost messages and tonic clients and
//! servers for the `WaitingRoom`, `Sales` and `Operator` services, and the encoded file
//! descriptor set that server reflection serves; and [`signed`], the signed credentials (queue
//! tokens, admission passes, ticket codes) with the offline ticket-code check.

pub mod signed;

/// Messages, clients and servers of package `taquilla.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("taquilla.v1");
}

/// The encoded `FileDescriptorSet` of every Taquilla `.proto` file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("taquilla_descriptor");

/// Metadata key that carries a fan's admission pass on `Sales` calls.
pub const ADMISSION_PASS_HEADER: &str = "x-admission-pass";

/// Metadata key that tells a rate-limited caller how long to wait, in milliseconds.
pub const RETRY_AFTER_MS_HEADER: &str = "retry-after-ms";
