//! Taquilla's gRPC API, package `taquilla.v1`: the generated prost messages and tonic clients and
//! servers for the `WaitingRoom`, `Sales` and `Operator` services, and the encoded file
//! descriptor set that server reflection serves; [`signed`], the signed credentials (queue
//! tokens, admission passes, the older HMAC ticket codes); [`tickets`], the Ed25519 ticket codes
//! a door scanner checks offline with public keys; [`display`], wire values written for people
//! (money, counts, times) as every client shows them; [`money`], currencies with their ISO 4217
//! decimals and amounts parsed from what people type; [`fairness`], the pre-queue's committed
//! shuffle and its manifest, as the server makes them and anyone checks them; and [`sim`], the
//! simulated payment provider's own service.

pub mod client;
pub mod display;
pub mod fairness;
pub mod money;
pub mod signed;
pub mod tickets;

/// Messages, clients and servers of package `taquilla.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("taquilla.v1");
}

/// The simulated payment provider's service (package `taquilla.sim.v1`), which several server
/// nodes share when the provider runs as a process of its own (`taquilla-paysim`).
pub mod sim {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("taquilla.sim.v1");
}

/// The encoded `FileDescriptorSet` of every Taquilla `.proto` file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("taquilla_descriptor");

/// Metadata key that carries a fan's admission pass on `Sales` calls.
pub const ADMISSION_PASS_HEADER: &str = "x-admission-pass";

/// Metadata key that tells a rate-limited caller how long to wait, in milliseconds.
pub const RETRY_AFTER_MS_HEADER: &str = "retry-after-ms";

/// How long the server asked the caller to wait before retrying, when it said.
pub fn retry_after(status: &tonic::Status) -> Option<std::time::Duration> {
    status
        .metadata()
        .get(RETRY_AFTER_MS_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
        .map(std::time::Duration::from_millis)
}

/// Metadata key on a FAILED_PRECONDITION that refuses a call because the event's sale has
/// ended: `sold-out` or `closed`, so a client can tell "sold out" from other refusals without
/// reading the sentence.
pub const SALE_ENDED_HEADER: &str = "taquilla-sale-ended";

/// Trailer of a refused second door scan: when the ticket was first scanned (Unix ms).
pub const FIRST_SCAN_AT_HEADER: &str = "taquilla-first-scan-at-ms";

/// Trailer of a refused second door scan: the gate that first scanned the ticket.
pub const FIRST_SCAN_GATE_HEADER: &str = "taquilla-first-scan-gate";

/// Why a sale ended, as [`SALE_ENDED_HEADER`] says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleEnded {
    /// Every seat is sold.
    SoldOut,
    /// The operator closed the sale.
    Closed,
}

impl SaleEnded {
    /// The header's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaleEnded::SoldOut => "sold-out",
            SaleEnded::Closed => "closed",
        }
    }
}

/// Whether `status` refused a call because the sale ended, and why.
pub fn sale_ended(status: &tonic::Status) -> Option<SaleEnded> {
    if status.code() != tonic::Code::FailedPrecondition {
        return None;
    }
    match status.metadata().get(SALE_ENDED_HEADER)?.to_str().ok()? {
        "sold-out" => Some(SaleEnded::SoldOut),
        "closed" => Some(SaleEnded::Closed),
        _ => None,
    }
}

/// The codec of every Taquilla service and client: prost, with 256-byte starting buffers instead
/// of tonic's 8 KiB. Buffers still grow for large messages (a seat map); what shrinks is the cost
/// of each idle stream, of which a waiting room (and a load generator playing its crowd) holds
/// hundreds of thousands: a queue update is well under 256 bytes.
#[derive(Debug, Clone, Copy)]
pub struct LeanCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        LeanCodec(std::marker::PhantomData)
    }
}

/// Starting buffer of the lean codec.
pub const LEAN_BUFFER_BYTES: usize = 256;

impl<T, U> tonic::codec::Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = tonic_prost::ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(tonic::codec::BufferSettings::new(
            LEAN_BUFFER_BYTES,
            32 * 1024,
        ))
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(tonic::codec::BufferSettings::new(
            LEAN_BUFFER_BYTES,
            32 * 1024,
        ))
    }
}
