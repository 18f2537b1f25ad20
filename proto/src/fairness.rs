//! The pre-queue's shuffle, provably fair: committed before anyone joins, revealed at opening,
//! and recomputable by anyone from a published manifest. The server, `taquilla-ops shuffle
//! verify` and the fan app all run this very code.
//!
//! 1. **Commit.** When an event is made, the server draws a 32-byte `seed` and a 32-byte
//!    `nonce` and publishes `commitment = SHA-256(seed ‖ nonce)` while keeping both secret.
//! 2. **Manifest.** At opening, every fan in the pre-queue is listed in join order as
//!    [`manifest_entry`]`(commitment, queue token)`: a value only that fan, who holds the token,
//!    can recognise. Each entry carries the fan's tier and, once shuffled, its place in the
//!    shuffled order. The manifest's [`manifest_digest`] covers entries and tiers, in order.
//! 3. **Reveal and shuffle.** The seed and nonce are published; the shuffle key is
//!    [`shuffle_key`]`(seed, digest)`, which neither the operator (committed to the seed before
//!    the joins) nor a late joiner (who cannot know the seed) controls. The pre-queue, in join
//!    order, is shuffled by [`shuffle`] (Fisher–Yates driven by SplitMix64 from the key); fans
//!    are then placed by tier (VIP, presale, general), each tier in shuffled order.
//!
//! [`verify`] checks all three: the commitment, the digest, and every entry's place.

use sha2::{Digest, Sha256};

/// Domain separation for the three hashes, so no value of one kind can pass for another.
const ENTRY_TAG: &[u8] = b"taquilla/v1/manifest-entry\0";
const KEY_TAG: &[u8] = b"taquilla/v1/shuffle-key\0";

/// Bytes of one manifest entry when stored or sent as one blob: entry, tier, order.
pub const ENTRY_BYTES: usize = 32 + 1 + 4;

/// A 32-byte value (seed, nonce, commitment, digest, entry).
pub type Bytes32 = [u8; 32];

/// The seed and nonce behind an event's commitment. Its `Debug` prints only the commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct ShuffleSecret {
    pub seed: Bytes32,
    pub nonce: Bytes32,
}

impl std::fmt::Debug for ShuffleSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShuffleSecret")
            .field("commitment", &hex::encode(self.commitment()))
            .finish_non_exhaustive()
    }
}

impl ShuffleSecret {
    /// The commitment published before the pre-queue fills.
    pub fn commitment(&self) -> Bytes32 {
        commitment(&self.seed, &self.nonce)
    }

    /// Seed then nonce, 128 hex digits (how the store keeps it).
    pub fn to_hex(&self) -> String {
        format!("{}{}", hex::encode(self.seed), hex::encode(self.nonce))
    }

    /// Reads [`ShuffleSecret::to_hex`]'s form back.
    pub fn from_hex(text: &str) -> Option<ShuffleSecret> {
        let bytes = hex::decode(text).ok()?;
        if bytes.len() != 64 {
            return None;
        }
        Some(ShuffleSecret {
            seed: bytes[..32].try_into().ok()?,
            nonce: bytes[32..].try_into().ok()?,
        })
    }
}

/// `SHA-256(seed ‖ nonce)`.
pub fn commitment(seed: &Bytes32, nonce: &Bytes32) -> Bytes32 {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(nonce);
    h.finalize().into()
}

/// A fan's line in the manifest: `SHA-256(tag ‖ commitment ‖ queue token)`. The token is
/// signed by the server and known only to its fan, so no one else can tell whose line it is;
/// the commitment makes it differ from event to event.
pub fn manifest_entry(commitment: &Bytes32, queue_token: &str) -> Bytes32 {
    let mut h = Sha256::new();
    h.update(ENTRY_TAG);
    h.update(commitment);
    h.update(queue_token.as_bytes());
    h.finalize().into()
}

/// One fan of the pre-queue at opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry {
    /// [`manifest_entry`] of the fan's queue token.
    pub entry: Bytes32,
    /// The fan's tier: 0 general, 1 presale, 2 VIP (higher tiers are placed first).
    pub tier: u8,
    /// The fan's place in the shuffled order, from 1 (before tiers are applied).
    pub order: u32,
}

impl ManifestEntry {
    /// Appends the entry's [`ENTRY_BYTES`] bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.entry);
        out.push(self.tier);
        out.extend_from_slice(&self.order.to_be_bytes());
    }

    /// Reads entries written by [`ManifestEntry::encode`]; `None` if the length is not a
    /// whole number of entries.
    pub fn decode_all(bytes: &[u8]) -> Option<Vec<ManifestEntry>> {
        if !bytes.len().is_multiple_of(ENTRY_BYTES) {
            return None;
        }
        bytes
            .chunks_exact(ENTRY_BYTES)
            .map(|c| {
                Some(ManifestEntry {
                    entry: c[..32].try_into().ok()?,
                    tier: c[32],
                    order: u32::from_be_bytes(c[33..37].try_into().ok()?),
                })
            })
            .collect()
    }
}

/// The manifest's digest: `SHA-256` over every entry and its tier, in join order. The order
/// field is the shuffle's output and not part of it.
pub fn manifest_digest<'a>(entries: impl IntoIterator<Item = (&'a Bytes32, u8)>) -> Bytes32 {
    let mut h = Sha256::new();
    for (entry, tier) in entries {
        h.update(entry);
        h.update([tier]);
    }
    h.finalize().into()
}

/// The shuffle's key: the first eight bytes (big-endian) of `SHA-256(tag ‖ seed ‖ digest)`.
pub fn shuffle_key(seed: &Bytes32, digest: &Bytes32) -> u64 {
    let mut h = Sha256::new();
    h.update(KEY_TAG);
    h.update(seed);
    h.update(digest);
    let hash: Bytes32 = h.finalize().into();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// SplitMix64: the published, trivially reimplemented generator behind the shuffle.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..bound (bound > 0), by rejection so no index is favoured.
    pub fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % bound;
            }
        }
    }
}

/// The pre-queue's order at opening: a Fisher–Yates shuffle of `items` (in join order) driven
/// by SplitMix64 from `key`. Anyone with the key and the join order recomputes it exactly.
pub fn shuffle<T>(items: &mut [T], key: u64) {
    let mut rng = SplitMix64::new(key);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A pre-queue at opening: its manifest in join order and the key that shuffled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub entries: Vec<ManifestEntry>,
    pub digest: Bytes32,
    pub key: u64,
    /// Join-order indices in shuffled order (`entries[shuffled[0]]` is first).
    pub shuffled: Vec<usize>,
}

/// Shuffles a pre-queue given in join order as (manifest entry, tier): what the server does at
/// opening. The entries are [`manifest_entry`] of each fan's queue token.
pub fn open(secret: &ShuffleSecret, prequeue: impl IntoIterator<Item = (Bytes32, u8)>) -> Opening {
    let mut entries: Vec<ManifestEntry> = prequeue
        .into_iter()
        .map(|(entry, tier)| ManifestEntry {
            entry,
            tier,
            order: 0,
        })
        .collect();
    let digest = manifest_digest(entries.iter().map(|e| (&e.entry, e.tier)));
    let key = shuffle_key(&secret.seed, &digest);
    let shuffled = shuffled_indices(entries.len(), key);
    for (rank, &index) in shuffled.iter().enumerate() {
        entries[index].order = u32::try_from(rank + 1).unwrap_or(u32::MAX);
    }
    Opening {
        entries,
        digest,
        key,
        shuffled,
    }
}

fn shuffled_indices(n: usize, key: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    shuffle(&mut indices, key);
    indices
}

/// Each entry's position in line right after opening (1 = first): higher tiers first, each
/// tier in shuffled order. Entries must carry their `order`.
pub fn opening_positions(entries: &[ManifestEntry]) -> Vec<u64> {
    let mut by_place: Vec<usize> = (0..entries.len()).collect();
    by_place.sort_by_key(|&i| (std::cmp::Reverse(entries[i].tier), entries[i].order));
    let mut positions = vec![0; entries.len()];
    for (place, &i) in by_place.iter().enumerate() {
        positions[i] = place as u64 + 1;
    }
    positions
}

/// What a verifier needs: all published after opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The commitment, as published before opening.
    pub commitment: Bytes32,
    pub seed: Bytes32,
    pub nonce: Bytes32,
    /// The digest the server says it shuffled with.
    pub digest: Bytes32,
    /// The manifest in join order.
    pub entries: Vec<ManifestEntry>,
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "the revealed seed and nonce hash to {computed}, not to the commitment {committed}: \
         the seed is not the one committed to"
    )]
    Commitment { committed: String, computed: String },
    #[error(
        "the manifest's entries hash to {computed}, not to the digest {published} the server \
         shuffled with: the manifest was changed"
    )]
    Digest { published: String, computed: String },
    #[error(
        "entry {index} (in join order) is published at place {published} of the shuffle, but \
         the seed and manifest put it at place {computed}"
    )]
    Order {
        index: usize,
        published: u32,
        computed: u32,
    },
}

/// What a proof showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key: u64,
    pub entries: usize,
}

/// Checks a proof: the seed and nonce match the commitment, the manifest matches the digest,
/// and every entry's place is the one the seed and manifest give.
pub fn verify(proof: &Proof) -> Result<Verified, VerifyError> {
    let computed = commitment(&proof.seed, &proof.nonce);
    if computed != proof.commitment {
        return Err(VerifyError::Commitment {
            committed: hex::encode(proof.commitment),
            computed: hex::encode(computed),
        });
    }
    let digest = manifest_digest(proof.entries.iter().map(|e| (&e.entry, e.tier)));
    if digest != proof.digest {
        return Err(VerifyError::Digest {
            published: hex::encode(proof.digest),
            computed: hex::encode(digest),
        });
    }
    let key = shuffle_key(&proof.seed, &digest);
    for (rank, &index) in shuffled_indices(proof.entries.len(), key)
        .iter()
        .enumerate()
    {
        let computed = u32::try_from(rank + 1).unwrap_or(u32::MAX);
        let published = proof.entries[index].order;
        if published != computed {
            return Err(VerifyError::Order {
                index,
                published,
                computed,
            });
        }
    }
    Ok(Verified {
        key,
        entries: proof.entries.len(),
    })
}

/// A fan's own line in a proof: its index in join order and its position right after opening.
pub fn find_fan(proof: &Proof, queue_token: &str) -> Option<(usize, u64)> {
    Places::of(proof).find(queue_token)
}

/// Every line of a proof by its value, with its place: to look up many fans in one proof.
#[derive(Debug, Clone)]
pub struct Places {
    commitment: Bytes32,
    by_entry: std::collections::HashMap<Bytes32, (usize, u64)>,
}

impl Places {
    pub fn of(proof: &Proof) -> Places {
        let positions = opening_positions(&proof.entries);
        Places {
            commitment: proof.commitment,
            by_entry: proof
                .entries
                .iter()
                .zip(positions)
                .enumerate()
                .map(|(index, (e, position))| (e.entry, (index, position)))
                .collect(),
        }
    }

    /// The line of the fan holding `queue_token`: its index in join order and its position
    /// right after opening.
    pub fn find(&self, queue_token: &str) -> Option<(usize, u64)> {
        self.by_entry
            .get(&manifest_entry(&self.commitment, queue_token))
            .copied()
    }
}

/// 32 bytes from 64 hex digits.
pub fn bytes32(text: &str) -> Option<Bytes32> {
    hex::decode(text).ok()?.try_into().ok()
}

/// A tier's rank in the manifest (higher goes first).
pub fn tier_rank(tier: crate::v1::QueueTier) -> u8 {
    match tier {
        crate::v1::QueueTier::Vip => 2,
        crate::v1::QueueTier::Presale => 1,
        crate::v1::QueueTier::General | crate::v1::QueueTier::Unspecified => 0,
    }
}

/// The tier of a rank in the manifest.
pub fn tier_of_rank(rank: u8) -> crate::v1::QueueTier {
    match rank {
        2 => crate::v1::QueueTier::Vip,
        1 => crate::v1::QueueTier::Presale,
        _ => crate::v1::QueueTier::General,
    }
}

/// How many manifest entries one `ShuffleProofChunk` carries.
pub const ENTRIES_PER_CHUNK: usize = 10_000;

/// A downloaded proof: the header, and the proof itself once the sale has opened.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub header: crate::v1::ShuffleProofHeader,
    pub proof: Option<Proof>,
}

/// Assembles the messages of a `GetShuffleProof` stream; an error names what is wrong with
/// them (a header that is missing or not hex, an entry that is not 32 bytes).
pub fn assemble(chunks: Vec<crate::v1::ShuffleProofChunk>) -> Result<Downloaded, String> {
    let mut chunks = chunks.into_iter();
    let first = chunks.next().ok_or("the server sent no proof")?;
    let header = first
        .header
        .clone()
        .ok_or("the proof's first message has no header")?;
    let hex32 = |name: &str, text: &str| {
        bytes32(text).ok_or_else(|| format!("the proof's {name} is not 64 hex digits: {text:?}"))
    };
    let commitment = hex32("commitment", &header.commitment)?;
    if !header.revealed {
        return Ok(Downloaded {
            header,
            proof: None,
        });
    }
    let mut entries = Vec::with_capacity(usize::try_from(header.entries).unwrap_or(0));
    for chunk in std::iter::once(first).chain(chunks) {
        for e in chunk.entries {
            let entry: Bytes32 = e.entry.as_slice().try_into().map_err(|_| {
                format!(
                    "manifest entry {} is {} bytes, not 32",
                    entries.len(),
                    e.entry.len()
                )
            })?;
            entries.push(ManifestEntry {
                entry,
                tier: tier_rank(e.tier()),
                order: e.order,
            });
        }
    }
    if entries.len() as u64 != header.entries {
        return Err(format!(
            "the proof announced {} manifest entries and carried {}",
            header.entries,
            entries.len()
        ));
    }
    let proof = Proof {
        commitment,
        seed: hex32("seed", &header.seed)?,
        nonce: hex32("nonce", &header.nonce)?,
        digest: hex32("manifest digest", &header.manifest_digest)?,
        entries,
    };
    Ok(Downloaded {
        header,
        proof: Some(proof),
    })
}

/// Downloads an event's proof through `GetShuffleProof` (the first error the server or the
/// stream gives ends it).
pub async fn download(
    channel: tonic::transport::Channel,
    event_id: &str,
) -> Result<Vec<crate::v1::ShuffleProofChunk>, tonic::Status> {
    let mut client = crate::v1::waiting_room_client::WaitingRoomClient::new(channel)
        .max_decoding_message_size(16 * 1024 * 1024);
    let mut stream = client
        .get_shuffle_proof(crate::v1::ShuffleProofRequest {
            event_id: event_id.to_string(),
        })
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.message().await? {
        chunks.push(chunk);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ShuffleSecret {
        ShuffleSecret {
            seed: [7; 32],
            nonce: [9; 32],
        }
    }

    fn tokens(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("token-of-fan-{i}")).collect()
    }

    fn proof_of(n: usize, tiers: impl Fn(usize) -> u8) -> Proof {
        let s = secret();
        let tokens = tokens(n);
        let commitment = s.commitment();
        let opening = open(
            &s,
            tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (manifest_entry(&commitment, t), tiers(i))),
        );
        Proof {
            commitment: s.commitment(),
            seed: s.seed,
            nonce: s.nonce,
            digest: opening.digest,
            entries: opening.entries,
        }
    }

    #[test]
    fn an_honest_opening_verifies() {
        let proof = proof_of(200, |i| (i % 7 == 0) as u8);
        let verified = verify(&proof).expect("verifies");
        assert_eq!(verified.entries, 200);
        // Every place from 1 to 200 is taken exactly once.
        let mut orders: Vec<u32> = proof.entries.iter().map(|e| e.order).collect();
        orders.sort_unstable();
        assert_eq!(orders, (1..=200).collect::<Vec<u32>>());
        // The shuffle is not the join order.
        assert_ne!(
            proof.entries.iter().map(|e| e.order).collect::<Vec<_>>(),
            (1..=200).collect::<Vec<u32>>()
        );
    }

    #[test]
    fn a_wrong_seed_fails() {
        let mut proof = proof_of(50, |_| 0);
        proof.seed[0] ^= 1;
        assert!(matches!(
            verify(&proof),
            Err(VerifyError::Commitment { .. })
        ));
    }

    #[test]
    fn a_commitment_that_does_not_match_fails() {
        let mut proof = proof_of(50, |_| 0);
        proof.commitment = commitment(&[1; 32], &proof.nonce);
        assert!(matches!(
            verify(&proof),
            Err(VerifyError::Commitment { .. })
        ));
        let mut proof = proof_of(50, |_| 0);
        proof.nonce[31] ^= 0x80;
        assert!(matches!(
            verify(&proof),
            Err(VerifyError::Commitment { .. })
        ));
    }

    #[test]
    fn a_tampered_entry_fails() {
        let honest = proof_of(50, |_| 0);
        let mut swapped = honest.clone();
        swapped.entries.swap(3, 4);
        assert!(matches!(verify(&swapped), Err(VerifyError::Digest { .. })));
        let mut replaced = honest.clone();
        replaced.entries[10].entry = manifest_entry(&honest.commitment, "someone-else");
        assert!(matches!(verify(&replaced), Err(VerifyError::Digest { .. })));
        let mut promoted = honest.clone();
        promoted.entries[10].tier = 2;
        assert!(matches!(verify(&promoted), Err(VerifyError::Digest { .. })));
        let mut dropped = honest;
        dropped.entries.remove(0);
        assert!(matches!(verify(&dropped), Err(VerifyError::Digest { .. })));
    }

    #[test]
    fn a_place_other_than_the_shuffles_fails() {
        let mut proof = proof_of(50, |_| 0);
        let first = proof
            .entries
            .iter()
            .position(|e| e.order == 1)
            .expect("first");
        let second = proof
            .entries
            .iter()
            .position(|e| e.order == 2)
            .expect("second");
        proof.entries[first].order = 2;
        proof.entries[second].order = 1;
        assert!(matches!(verify(&proof), Err(VerifyError::Order { .. })));
    }

    #[test]
    fn a_fan_finds_their_place_and_tiers_go_first() {
        let proof = proof_of(30, |i| if i == 29 { 2 } else { (i % 3 == 0) as u8 });
        let tokens = tokens(30);
        // The VIP, who joined last, is first in line.
        assert_eq!(find_fan(&proof, &tokens[29]), Some((29, 1)));
        let presale = (0..30).filter(|i| i % 3 == 0).count() as u64;
        for (i, token) in tokens.iter().enumerate() {
            let (index, position) = find_fan(&proof, token).expect("listed");
            assert_eq!(index, i);
            if i != 29 && i % 3 == 0 {
                assert!((2..=presale + 1).contains(&position), "{i}: {position}");
            } else if i != 29 {
                assert!(position > presale + 1, "{i}: {position}");
            }
        }
        assert_eq!(find_fan(&proof, "not-a-fan"), None);
    }

    #[test]
    fn entries_survive_their_encoding_and_the_secret_its_hex() {
        let proof = proof_of(20, |i| (i % 3) as u8);
        let mut blob = Vec::new();
        for e in &proof.entries {
            e.encode(&mut blob);
        }
        assert_eq!(blob.len(), 20 * ENTRY_BYTES);
        assert_eq!(
            ManifestEntry::decode_all(&blob),
            Some(proof.entries.clone())
        );
        assert_eq!(ManifestEntry::decode_all(&blob[1..]), None);
        let s = secret();
        assert_eq!(ShuffleSecret::from_hex(&s.to_hex()), Some(s.clone()));
        assert_eq!(ShuffleSecret::from_hex("abcd"), None);
        assert!(!format!("{s:?}").contains(&hex::encode(s.seed)));
    }
}
