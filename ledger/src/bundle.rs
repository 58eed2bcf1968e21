//! The provenance bundle: everything needed to verify one shipment's history offline, with
//! nothing but the network's genesis file.
//!
//! A bundle names one checkpoint (a committed block header with its commit certificate) and
//! carries every event of the shipment in canonical bytes, each with its RFC 6962 inclusion
//! proof in the log as of that checkpoint. Verification walks the chain of trust from the
//! genesis: the genesis names the validators; more than two thirds of their voting power signed
//! the checkpoint's header; the header commits to the log root; each proof puts an event id
//! under that root; each event's bytes hash to its id and carry a valid signature. The format
//! is specified in `docs/PROTOCOL.md` §14 for verifiers in other languages.
//!
//! A bundle proves that the events it holds are on the ledger, in that order; it cannot prove
//! that none was left out. The node builds it from the shipment index, and the log size in the
//! checkpoint lets a reader ask any other node for the events up to that size.

use serde::{Deserialize, Serialize};

use crate::block::{self, BlockHeader, CommitCertificate};
use crate::codec::{self, EVENT_SIZE_BYTES_MAX, RECORD_SIZE_BYTES_MAX};
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::merkle;
use crate::model::{EventId, ShipmentId, SignedEvent};
use crate::store::{Store, StoreError};

/// The format tag of this version of the bundle.
pub const BUNDLE_FORMAT: &str = "custody-bundle/v1";

/// Most events a bundle carries. A shipment's lifecycle is a dozen events; the bound keeps a
/// bundle, and the work to verify it, small whatever a shipment's history holds.
pub const BUNDLE_EVENTS_MAX: usize = 10_000;

/// A self-contained proof of a shipment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    #[cfg_attr(feature = "openapi", schema(examples("custody-bundle/v1")))]
    pub format: String,
    /// The network's chain id.
    pub chain_id: String,
    /// The hash of the genesis file the bundle verifies against.
    pub genesis_hash: Digest,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The block every proof leads to.
    pub checkpoint: Checkpoint,
    /// The shipment's events in log order.
    pub events: Vec<BundleEvent>,
}

/// A committed header and its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The header's canonical bytes, base64: what is hashed.
    #[serde(with = "base64_bytes")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Byte, content_encoding = "base64")
    )]
    pub header_bytes: Vec<u8>,
    /// The same header, readable. It must decode from `header_bytes` exactly.
    pub header: BlockHeader,
    /// The precommit signatures over the header's hash.
    pub certificate: CommitCertificate,
}

/// One event with its place in the log and its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BundleEvent {
    /// The event id: the domain-separated hash of `bytes`.
    pub event_id: EventId,
    /// Height of the block that committed it.
    pub height: u64,
    /// Its index in the log (0-based).
    pub log_index: u64,
    /// Canonical bytes of the signed event, base64.
    #[serde(with = "base64_bytes")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Byte, content_encoding = "base64")
    )]
    pub bytes: Vec<u8>,
    /// The same event, readable. It must decode from `bytes` exactly.
    pub event: SignedEvent,
    /// Sibling hashes from the event's leaf to the checkpoint's log root.
    pub inclusion_proof: Vec<Digest>,
}

/// Why a bundle does not verify: which item and which check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{check}: {message}", .event.map(|e| format!("event {e} (#{}): ", .index.unwrap_or(0))).unwrap_or_default())]
pub struct BundleError {
    /// The event at fault, if the fault is in one event.
    pub event: Option<EventId>,
    /// Its position in the bundle.
    pub index: Option<usize>,
    /// The check that failed, a stable name such as `event.inclusion_proof`.
    pub check: &'static str,
    /// What was found.
    pub message: String,
}

/// What a valid bundle establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The checkpoint height.
    pub height: u64,
    /// The checkpoint's block hash.
    pub block_hash: Digest,
    /// The log size and root the proofs lead to.
    pub log_size: u64,
    /// The log root.
    pub log_root: Digest,
    /// The verified events, in log order.
    pub events: Vec<EncodedEvent>,
}

fn whole(check: &'static str, message: String) -> BundleError {
    BundleError {
        event: None,
        index: None,
        check,
        message,
    }
}

fn missing(record: String) -> StoreError {
    StoreError::Corrupt {
        record,
        message: "indexed but missing".into(),
    }
}

/// The checkpoint of a committed height, or `None` above the head.
pub fn checkpoint_at<S: Store + ?Sized>(
    store: &S,
    height: u64,
) -> Result<Option<Checkpoint>, StoreError> {
    let (Some(header), Some(certificate)) = (store.header(height)?, store.certificate(height)?)
    else {
        return Ok(None);
    };
    Ok(Some(Checkpoint {
        header_bytes: codec::encode(&header),
        header,
        certificate,
    }))
}

/// Builds the bundle of `shipment` at the store's head, or `None` if the shipment has no
/// committed event.
pub fn build<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    shipment: &ShipmentId,
) -> Result<Option<Bundle>, StoreError> {
    let Some(head) = store.head()? else {
        return Ok(None);
    };
    let located = store.shipment_events(shipment, None, BUNDLE_EVENTS_MAX)?;
    if located.is_empty() {
        return Ok(None);
    }
    let checkpoint = checkpoint_at(store, head.height)?
        .ok_or_else(|| missing(format!("block {}", head.height)))?;
    let header = &checkpoint.header;
    let mut events = Vec::with_capacity(located.len());
    for (log_index, id) in located {
        let stored = store
            .event(&id)?
            .ok_or_else(|| missing(format!("event {id}")))?;
        assert_eq!(
            stored.location.log_index, log_index,
            "the index names the event's place"
        );
        events.push(BundleEvent {
            event_id: id,
            height: stored.location.height,
            log_index,
            inclusion_proof: store.inclusion_proof(log_index, header.log_size)?,
            bytes: stored.event.bytes,
            event: stored.event.event,
        });
    }
    Ok(Some(Bundle {
        format: BUNDLE_FORMAT.into(),
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        shipment_id: shipment.clone(),
        checkpoint,
        events,
    }))
}

/// Verifies a bundle against a genesis, offline. The first failed check is reported, naming
/// the event (if any) and the check.
pub fn verify(bundle: &Bundle, genesis: &Genesis) -> Result<Verified, BundleError> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(whole(
            "bundle.format",
            format!("format {:?}, expected {BUNDLE_FORMAT:?}", bundle.format),
        ));
    }
    if bundle.genesis_hash != genesis.hash() || bundle.chain_id != genesis.chain_id {
        return Err(whole(
            "bundle.genesis",
            format!(
                "bundle is for chain {:?} with genesis {}, the genesis file is chain {:?} with hash {}",
                bundle.chain_id,
                bundle.genesis_hash,
                genesis.chain_id,
                genesis.hash()
            ),
        ));
    }
    if bundle.events.len() > BUNDLE_EVENTS_MAX {
        return Err(whole(
            "bundle.events",
            format!(
                "{} events, at most {BUNDLE_EVENTS_MAX}",
                bundle.events.len()
            ),
        ));
    }
    let header = verify_checkpoint(&bundle.checkpoint, genesis)?;
    let block_hash = header.hash();

    let mut events = Vec::with_capacity(bundle.events.len());
    let mut previous: Option<u64> = None;
    for (index, item) in bundle.events.iter().enumerate() {
        let fail = |check: &'static str, message: String| BundleError {
            event: Some(item.event_id),
            index: Some(index),
            check,
            message,
        };
        let event = EncodedEvent::decode(&item.bytes)
            .map_err(|e| fail("event.bytes", format!("not a canonical signed event: {e}")))?;
        assert!(
            item.bytes.len() <= EVENT_SIZE_BYTES_MAX,
            "decode enforces the limit"
        );
        if event.id != item.event_id {
            return Err(fail(
                "event.id",
                format!("the bytes hash to {}, not to the stated id", event.id),
            ));
        }
        if event.event != item.event {
            return Err(fail(
                "event.json",
                "the readable event differs from the event bytes".into(),
            ));
        }
        if event.event.event.chain_id != genesis.chain_id {
            return Err(fail(
                "event.chain_id",
                format!("event of chain {:?}", event.event.event.chain_id),
            ));
        }
        event
            .verify_signature()
            .map_err(|r| fail("event.signature", r.message))?;
        if event.event.event.kind.shipment_id() != Some(&bundle.shipment_id) {
            return Err(fail(
                "event.shipment",
                format!("the event is not about shipment {}", bundle.shipment_id),
            ));
        }
        if previous.is_some_and(|p| item.log_index <= p) {
            return Err(fail(
                "event.order",
                format!(
                    "log index {} does not follow {}",
                    item.log_index,
                    previous.unwrap_or(0)
                ),
            ));
        }
        previous = Some(item.log_index);
        if item.height > header.height {
            return Err(fail(
                "event.height",
                format!(
                    "height {} is after the checkpoint {}",
                    item.height, header.height
                ),
            ));
        }
        merkle::verify_inclusion(
            &merkle::leaf_hash(event.id.as_bytes()),
            item.log_index,
            header.log_size,
            &item.inclusion_proof,
            &header.log_root,
        )
        .map_err(|e| fail("event.inclusion_proof", e.to_string()))?;
        events.push(event);
    }
    Ok(Verified {
        shipment_id: bundle.shipment_id.clone(),
        height: header.height,
        block_hash,
        log_size: header.log_size,
        log_root: header.log_root,
        events,
    })
}

/// Verifies a checkpoint against a genesis: the header decodes from its canonical bytes, the
/// readable header matches them, and the certificate holds signatures of more than two thirds
/// of the genesis validators' power over the header's hash. Returns the header.
pub fn verify_checkpoint(
    checkpoint: &Checkpoint,
    genesis: &Genesis,
) -> Result<BlockHeader, BundleError> {
    let header: BlockHeader = codec::decode(&checkpoint.header_bytes, RECORD_SIZE_BYTES_MAX)
        .map_err(|e| {
            whole(
                "checkpoint.header_bytes",
                format!("not a canonical header: {e}"),
            )
        })?;
    if header != checkpoint.header {
        return Err(whole(
            "checkpoint.header",
            "the readable header differs from the header bytes".into(),
        ));
    }
    if header.chain_id != genesis.chain_id {
        return Err(whole(
            "checkpoint.header",
            format!("header of chain {:?}", header.chain_id),
        ));
    }
    block::verify_certificate(
        &checkpoint.certificate,
        &genesis.chain_id,
        header.height,
        &header.hash(),
        &genesis.validators(),
    )
    .map_err(|e| whole("checkpoint.certificate", e.to_string()))?;
    Ok(header)
}

/// Verifies that the log of checkpoint `new` extends the log of checkpoint `old` (both
/// verified against the genesis), with an RFC 6962 consistency proof: nothing committed by
/// `old` was rewritten later.
pub fn verify_extension(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Digest],
    genesis: &Genesis,
) -> Result<(), BundleError> {
    let old = verify_checkpoint(old, genesis)?;
    let new = verify_checkpoint(new, genesis)?;
    merkle::verify_consistency(
        old.log_size,
        new.log_size,
        &old.log_root,
        &new.log_root,
        proof,
    )
    .map_err(|e| whole("log.consistency_proof", e.to_string()))
}

/// Serde for byte strings as standard base64 with padding.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testkit::TestNet;

    /// A store with two shipments' lifecycles committed over three blocks.
    fn store_with_history(net: &TestNet) -> MemoryStore {
        let store = MemoryStore::new(net.genesis_hash());
        let a = net.lifecycle("B-A");
        let b = net.lifecycle("B-B");
        let first: Vec<EncodedEvent> = a[..5].iter().chain(&b[..3]).cloned().collect();
        let second: Vec<EncodedEvent> = a[5..].iter().chain(&b[3..]).cloned().collect();
        for events in [first, second] {
            let built = net
                .commit(&store, events, crate::testkit::GENESIS_TIME)
                .expect("commit");
            assert!(built.rejected.is_empty(), "{:?}", built.rejected);
        }
        store
    }

    fn bundle() -> (TestNet, Bundle) {
        let net = TestNet::new();
        let store = store_with_history(&net);
        let bundle = build(&store, &net.genesis, &ShipmentId::new("B-A"))
            .expect("store")
            .expect("shipment has events");
        (net, bundle)
    }

    #[test]
    fn a_built_bundle_verifies_and_holds_the_whole_lifecycle() {
        let (net, bundle) = bundle();
        let verified = verify(&bundle, &net.genesis).expect("valid");
        let expected: Vec<EventId> = net.lifecycle("B-A").iter().map(|e| e.id).collect();
        let got: Vec<EventId> = verified.events.iter().map(|e| e.id).collect();
        assert_eq!(got, expected);
        assert_eq!(verified.height, 2);
        assert_eq!(verified.log_size, 22);
    }

    #[test]
    fn a_bundle_survives_json() {
        let (net, bundle) = bundle();
        let json = serde_json::to_string(&bundle).expect("json");
        let back: Bundle = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, bundle);
        verify(&back, &net.genesis).expect("valid");
    }

    #[test]
    fn a_later_checkpoint_extends_an_earlier_one() {
        let net = TestNet::new();
        let store = store_with_history(&net);
        let one = checkpoint_at(&store, 1).unwrap().expect("height 1");
        let two = checkpoint_at(&store, 2).unwrap().expect("height 2");
        assert_eq!(checkpoint_at(&store, 3).unwrap(), None);
        let proof = store
            .consistency_proof(one.header.log_size, two.header.log_size)
            .unwrap();
        verify_extension(&one, &two, &proof, &net.genesis).expect("consistent");
        let mut bad = proof.clone();
        bad[0].0[0] ^= 1;
        let error = verify_extension(&one, &two, &bad, &net.genesis).expect_err("tampered");
        assert_eq!(error.check, "log.consistency_proof");
    }

    #[test]
    fn an_unknown_shipment_has_no_bundle() {
        let net = TestNet::new();
        let store = store_with_history(&net);
        assert_eq!(
            build(&store, &net.genesis, &ShipmentId::new("NONE")).unwrap(),
            None
        );
    }

    fn fails(bundle: &Bundle, net: &TestNet, check: &str, event: Option<usize>) {
        let error = verify(bundle, &net.genesis).expect_err("tampered bundle verified");
        assert_eq!(error.check, check, "{error}");
        assert_eq!(error.index, event, "{error}");
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let (net, original) = bundle();

        let mut b = original.clone();
        let last = b.events[3].bytes.len() - 70;
        b.events[3].bytes[last] ^= 1;
        let error = verify(&b, &net.genesis).expect_err("tampered");
        assert_eq!(error.index, Some(3));
        assert!(matches!(error.check, "event.id" | "event.bytes"), "{error}");

        let mut b = original.clone();
        b.events[2].inclusion_proof[0].0[0] ^= 1;
        fails(&b, &net, "event.inclusion_proof", Some(2));

        let mut b = original.clone();
        b.events[1].inclusion_proof.pop();
        fails(&b, &net, "event.inclusion_proof", Some(1));

        let mut b = original.clone();
        b.checkpoint.certificate.signatures[0].signature.0[5] ^= 1;
        fails(&b, &net, "checkpoint.certificate", None);

        let mut b = original.clone();
        b.checkpoint.header.log_size += 1;
        fails(&b, &net, "checkpoint.header", None);

        let mut b = original.clone();
        b.events.swap(0, 1);
        fails(&b, &net, "event.order", Some(1));

        let mut b = original.clone();
        b.events[4].event.signature.0[0] ^= 1;
        fails(&b, &net, "event.json", Some(4));

        let mut b = original.clone();
        b.shipment_id = ShipmentId::new("B-B");
        fails(&b, &net, "event.shipment", Some(0));

        let mut other = TestNet::new().genesis;
        other.chain_id = "another-chain".into();
        let error = verify(&original, &other).expect_err("wrong genesis");
        assert_eq!(error.check, "bundle.genesis");
    }
}
