//! The provenance bundle: everything needed to verify one shipment's history offline, with
//! nothing but the network's genesis file.
//!
//! A bundle names one checkpoint (a committed block header with its commit certificate) and
//! carries every event of the shipment in canonical bytes, each with its log entry: block
//! height, block time, log index and the entry hash of the shipment's previous event. The
//! entries form a hash chain from the registration to the shipment's latest event, and the
//! checkpoint's header commits to that latest entry in its shipment map (`smt`), so one map
//! proof authenticates every entry: an event left out, a height or a time changed, breaks the
//! chain or the proof. Verification walks the chain of trust from the genesis: the genesis
//! names the validators; more than two thirds of their voting power signed the checkpoint's
//! header; the header's shipment map holds the last entry; each entry names its predecessor and
//! its event; each event's bytes hash to its id and carry a valid signature. Disclosures of
//! personal data (values with their salts) are checked against the commitments in the events.
//! The format is specified in `docs/PROTOCOL.md` §14 for verifiers in other languages.

use serde::{Deserialize, Serialize};

use crate::block::{self, BlockHeader, CommitCertificate};
use crate::codec::{self, EVENT_SIZE_BYTES_MAX, RECORD_SIZE_BYTES_MAX};
use crate::entry::LogEntry;
use crate::event::EncodedEvent;
use crate::genesis::Genesis;
use crate::hash::Digest;
use crate::merkle;
use crate::model::{EventId, EventKind, ShipmentId, SignedEvent};
use crate::personal::Disclosure;
use crate::smt::{self, MapProof};
use crate::store::{MapSource, Store, StoreError};
use crate::time::Timestamp;

/// The format tag of this version of the bundle.
pub const BUNDLE_FORMAT: &str = "custody-bundle/v2";

/// Most events a bundle carries. A shipment's lifecycle is a dozen events; the bound keeps a
/// bundle, and the work to verify it, small whatever a shipment's history holds.
pub const BUNDLE_EVENTS_MAX: usize = 10_000;

/// Most disclosures a bundle carries (a few personal fields per shipment).
pub const BUNDLE_DISCLOSURES_MAX: usize = 64;

/// A self-contained proof of a shipment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    #[cfg_attr(feature = "openapi", schema(examples("custody-bundle/v2")))]
    pub format: String,
    /// The network's chain id.
    pub chain_id: String,
    /// The hash of the genesis file the bundle verifies against.
    pub genesis_hash: Digest,
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The block every proof leads to.
    pub checkpoint: Checkpoint,
    /// Proof in the checkpoint's shipment map that the last event's entry is the shipment's
    /// head: sibling hashes, deepest first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub shipment_proof: MapProof,
    /// The shipment's events in log order, from its registration to its head.
    pub events: Vec<BundleEvent>,
    /// Personal values with their salts, for commitments in the events.
    #[serde(default)]
    pub disclosures: Vec<Disclosure>,
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

/// One event with its log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BundleEvent {
    /// The event id: the domain-separated hash of `bytes`.
    pub event_id: EventId,
    /// Height of the block that committed it.
    pub height: u64,
    /// That block's time.
    pub time: Timestamp,
    /// Its index in the log (0-based).
    pub log_index: u64,
    /// Entry hash of the shipment's previous event; null for the first.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub shipment_prev: Option<Digest>,
    /// Canonical bytes of the signed event, base64.
    #[serde(with = "base64_bytes")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Byte, content_encoding = "base64")
    )]
    pub bytes: Vec<u8>,
    /// The same event, readable. It must decode from `bytes` exactly.
    pub event: SignedEvent,
}

impl BundleEvent {
    /// The log entry this item states.
    pub fn entry(&self) -> LogEntry {
        LogEntry {
            event_id: self.event_id,
            height: self.height,
            time: self.time,
            log_index: self.log_index,
            shipment_prev: self.shipment_prev,
        }
    }
}

/// Why a bundle does not verify: which item and which check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{check}: {message}", .event.map(|e| format!("event {e} (#{}): ", .index.unwrap_or(0))).unwrap_or_default())]
pub struct BundleError {
    /// The event at fault, if the fault is in one event.
    pub event: Option<EventId>,
    /// Its position in the bundle (or the disclosure's, for `disclosure.*` checks).
    pub index: Option<usize>,
    /// The check that failed, a stable name such as `event.chain`.
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
    /// The checkpoint's time.
    pub time: Timestamp,
    /// The checkpoint's block hash.
    pub block_hash: Digest,
    /// The log size at the checkpoint.
    pub log_size: u64,
    /// The shipment map root the chain is anchored to.
    pub shipments_root: Digest,
    /// The verified events, in log order.
    pub events: Vec<EncodedEvent>,
    /// Their verified entries: when each was committed.
    pub entries: Vec<LogEntry>,
    /// Disclosures that matched their commitments.
    pub disclosures: Vec<Disclosure>,
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

/// Times a bundle is rebuilt when a block lands while it is read (the map read is then newer
/// than the checkpoint). One retry is nearly always enough; the bound keeps a busy node from
/// looping.
const BUILD_ATTEMPTS_MAX: usize = 4;

/// Builds the bundle of `shipment` at the store's head, or `None` if the shipment has no
/// committed event. Disclosures are added by the caller, which holds them off the ledger.
pub fn build<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    shipment: &ShipmentId,
) -> Result<Option<Bundle>, StoreError> {
    for _ in 0..BUILD_ATTEMPTS_MAX {
        match build_once(store, genesis, shipment)? {
            Attempt::Built(bundle) => return Ok(bundle.map(|b| *b)),
            Attempt::Raced => continue,
        }
    }
    Err(StoreError::Unsettled {
        shipment: shipment.clone(),
        attempts: BUILD_ATTEMPTS_MAX,
    })
}

enum Attempt {
    Built(Option<Box<Bundle>>),
    Raced,
}

fn build_once<S: Store + ?Sized>(
    store: &S,
    genesis: &Genesis,
    shipment: &ShipmentId,
) -> Result<Attempt, StoreError> {
    let Some(head) = store.head()? else {
        return Ok(Attempt::Built(None));
    };
    let checkpoint = checkpoint_at(store, head.height)?
        .ok_or_else(|| missing(format!("block {}", head.height)))?;
    let events = bundle_events(store, shipment, head.height)?;
    let Some(last) = events.last() else {
        return Ok(Attempt::Built(None));
    };
    let key = smt::key_of(&shipment.0);
    let proven = smt::prove(&MapSource::new(store), &key)?;
    let Some((value, proof)) = proven else {
        return Ok(Attempt::Raced);
    };
    let root = &checkpoint.header.shipments_root;
    if value != last.entry().hash() || smt::verify(root, &key, &value, &proof).is_err() {
        // A block was appended between reading the head and reading the map.
        return Ok(Attempt::Raced);
    }
    Ok(Attempt::Built(Some(Box::new(Bundle {
        format: BUNDLE_FORMAT.into(),
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        shipment_id: shipment.clone(),
        checkpoint,
        shipment_proof: proof,
        events,
        disclosures: Vec::new(),
    }))))
}

/// The shipment's events committed at or below `height`, with their entries.
fn bundle_events<S: Store + ?Sized>(
    store: &S,
    shipment: &ShipmentId,
    height: u64,
) -> Result<Vec<BundleEvent>, StoreError> {
    let located = store.shipment_events(shipment, None, BUNDLE_EVENTS_MAX)?;
    let mut events: Vec<BundleEvent> = Vec::with_capacity(located.len());
    let mut block_time: Option<(u64, Timestamp)> = None;
    for (log_index, id) in located {
        let stored = store
            .event(&id)?
            .ok_or_else(|| missing(format!("event {id}")))?;
        assert_eq!(
            stored.location.log_index, log_index,
            "the index names the event's place"
        );
        let at = stored.location.height;
        if at > height {
            break;
        }
        let time = match block_time {
            Some((h, t)) if h == at => t,
            _ => {
                let header = store
                    .header(at)?
                    .ok_or_else(|| missing(format!("block {at}")))?;
                block_time = Some((at, header.time));
                header.time
            }
        };
        let shipment_prev = events.last().map(|e| e.entry().hash());
        let (bytes, event) = stored.event.into_parts();
        events.push(BundleEvent {
            event_id: id,
            height: at,
            time,
            log_index,
            shipment_prev,
            bytes,
            event,
        });
    }
    Ok(events)
}

/// Verifies a bundle against a genesis, offline. The first failed check is reported, naming
/// the event (if any) and the check.
pub fn verify(bundle: &Bundle, genesis: &Genesis) -> Result<Verified, BundleError> {
    check_envelope(bundle, genesis)?;
    let header = verify_checkpoint(&bundle.checkpoint, genesis)?;
    let mut events = Vec::with_capacity(bundle.events.len());
    let mut entries: Vec<LogEntry> = Vec::with_capacity(bundle.events.len());
    for (index, item) in bundle.events.iter().enumerate() {
        let event = verify_event(bundle, genesis, &header, index, entries.last())?;
        entries.push(item.entry());
        events.push(event);
    }
    let last = entries
        .last()
        .expect("check_envelope refuses an empty bundle");
    smt::verify(
        &header.shipments_root,
        &smt::key_of(&bundle.shipment_id.0),
        &last.hash(),
        &bundle.shipment_proof,
    )
    .map_err(|e| {
        whole(
            "bundle.complete",
            format!(
                "the checkpoint's shipment map does not name the last event's entry as the \
                 shipment's head (an event is missing or changed): {e}"
            ),
        )
    })?;
    verify_disclosures(bundle, &events)?;
    Ok(Verified {
        shipment_id: bundle.shipment_id.clone(),
        height: header.height,
        time: header.time,
        block_hash: header.hash(),
        log_size: header.log_size,
        shipments_root: header.shipments_root,
        events,
        entries,
        disclosures: bundle.disclosures.clone(),
    })
}

fn check_envelope(bundle: &Bundle, genesis: &Genesis) -> Result<(), BundleError> {
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
    if bundle.events.is_empty() || bundle.events.len() > BUNDLE_EVENTS_MAX {
        return Err(whole(
            "bundle.events",
            format!(
                "{} events, expected 1 to {BUNDLE_EVENTS_MAX}",
                bundle.events.len()
            ),
        ));
    }
    if bundle.disclosures.len() > BUNDLE_DISCLOSURES_MAX {
        return Err(whole(
            "bundle.disclosures",
            format!(
                "{} disclosures, at most {BUNDLE_DISCLOSURES_MAX}",
                bundle.disclosures.len()
            ),
        ));
    }
    Ok(())
}

/// Checks the event at `index`: its bytes, id, readable copy, chain, signature, shipment,
/// and its entry against the previous one.
fn verify_event(
    bundle: &Bundle,
    genesis: &Genesis,
    header: &BlockHeader,
    index: usize,
    previous: Option<&LogEntry>,
) -> Result<EncodedEvent, BundleError> {
    let item = &bundle.events[index];
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
    if event.id() != item.event_id {
        return Err(fail(
            "event.id",
            format!("the bytes hash to {}, not to the stated id", event.id()),
        ));
    }
    if *event.event() != item.event {
        return Err(fail(
            "event.json",
            "the readable event differs from the event bytes".into(),
        ));
    }
    if event.event().event.chain_id != genesis.chain_id {
        return Err(fail(
            "event.chain_id",
            format!("event of chain {:?}", event.event().event.chain_id),
        ));
    }
    event
        .verify_signature()
        .map_err(|r| fail("event.signature", r.message))?;
    if event.event().event.kind.shipment_id() != Some(&bundle.shipment_id) {
        return Err(fail(
            "event.shipment",
            format!("the event is not about shipment {}", bundle.shipment_id),
        ));
    }
    check_entry(item, &event.event().event.kind, header, previous).map_err(|(c, m)| fail(c, m))?;
    Ok(event)
}

/// The entry's place: after the previous entry in the log and in time, not after the
/// checkpoint, and chained to the previous entry (the first to nothing, as a registration).
fn check_entry(
    item: &BundleEvent,
    kind: &EventKind,
    header: &BlockHeader,
    previous: Option<&LogEntry>,
) -> Result<(), (&'static str, String)> {
    if let Some(p) = previous {
        if item.log_index <= p.log_index {
            return Err((
                "event.order",
                format!(
                    "log index {} does not follow {}",
                    item.log_index, p.log_index
                ),
            ));
        }
    }
    if item.height > header.height || previous.is_some_and(|p| item.height < p.height) {
        return Err((
            "event.height",
            format!(
                "height {} is after the checkpoint {} or before the previous event's",
                item.height, header.height
            ),
        ));
    }
    if item.time > header.time || previous.is_some_and(|p| item.time < p.time) {
        return Err((
            "event.time",
            format!(
                "block time {} is after the checkpoint's {} or before the previous event's",
                item.time, header.time
            ),
        ));
    }
    let expected = previous.map(LogEntry::hash);
    if item.shipment_prev != expected {
        return Err((
            "event.chain",
            match expected {
                Some(h) => format!("the entry does not chain to the previous event's entry {h}"),
                None => "the first event's entry must have no predecessor".into(),
            },
        ));
    }
    if previous.is_none() && !matches!(kind, EventKind::ShipmentRegistered(_)) {
        return Err((
            "event.chain",
            format!("the first event is a {}, not the registration", kind.name()),
        ));
    }
    Ok(())
}

/// Every disclosure names an event of the bundle, a field that event commits to, and a value
/// and salt that give that commitment.
fn verify_disclosures(bundle: &Bundle, events: &[EncodedEvent]) -> Result<(), BundleError> {
    for (index, d) in bundle.disclosures.iter().enumerate() {
        let fail = |check: &'static str, message: String| BundleError {
            event: Some(d.event_id),
            index: Some(index),
            check,
            message,
        };
        let event = events
            .iter()
            .find(|e| e.id() == d.event_id)
            .ok_or_else(|| fail("disclosure.event", "not an event of this bundle".into()))?;
        d.check(&event.event().event.kind)
            .map_err(|e| fail(e.code(), e.to_string()))?;
    }
    Ok(())
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
    use crate::personal;
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
        let expected: Vec<EventId> = net.lifecycle("B-A").iter().map(|e| e.id()).collect();
        let got: Vec<EventId> = verified.events.iter().map(|e| e.id()).collect();
        assert_eq!(got, expected);
        assert_eq!(verified.height, 2);
        assert_eq!(verified.log_size, 22);
        assert_eq!(verified.entries.len(), expected.len());
        assert!(verified
            .entries
            .iter()
            .all(|e| e.height >= 1 && e.height <= 2));
    }

    /// Issue 15: a node that leaves out an event, or changes when one was committed, serves
    /// a bundle that fails, naming the check.
    #[test]
    fn regression_issue_15_an_omitted_or_retimed_event_is_detected() {
        let (net, original) = bundle();
        assert!(original.events.len() >= 4);

        // A middle event left out: the next entry no longer chains.
        let mut b = original.clone();
        b.events.remove(2);
        fails(&b, &net, "event.chain", Some(2));

        // The last event left out: the chain holds, but the map names another head.
        let mut b = original.clone();
        b.events.pop();
        fails(&b, &net, "bundle.complete", None);

        // The first event left out: the chain has no registration.
        let mut b = original.clone();
        b.events.remove(0);
        fails(&b, &net, "event.chain", Some(0));

        // A block time moved: the entry hash changes, or the times no longer follow.
        let last = original.events.len() - 1;
        let mut b = original.clone();
        b.events[last].time = Timestamp(b.events[last].time.0 - 1);
        let error = verify(&b, &net.genesis).expect_err("retimed");
        assert!(
            matches!(error.check, "event.time" | "bundle.complete"),
            "{error}"
        );
        let mut b = original.clone();
        b.events[0].time = Timestamp(b.events[0].time.0 - 1);
        fails(&b, &net, "event.chain", Some(1));

        // A height lowered: same.
        let mut b = original.clone();
        b.events[last].height -= 1;
        assert!(verify(&b, &net.genesis).is_err());

        // A time after the checkpoint's is refused by its own check.
        let mut b = original.clone();
        b.events[last].time = Timestamp(b.checkpoint.header.time.0 + 1);
        fails(&b, &net, "event.time", Some(last));
    }

    #[test]
    fn disclosures_are_checked_against_the_commitments() {
        let (net, original) = bundle();
        let registration = &original.events[0];
        let salt = crate::testkit::salt_for("B-A", personal::PersonalField::BuyerName);
        let name = crate::testkit::buyer_name("B-A");
        let mut b = original.clone();
        b.disclosures.push(Disclosure {
            event_id: registration.event_id,
            field: personal::PersonalField::BuyerName,
            value: name.clone(),
            salt,
        });
        let verified = verify(&b, &net.genesis).expect("a true disclosure verifies");
        assert_eq!(verified.disclosures.len(), 1);

        let mut bad = b.clone();
        bad.disclosures[0].value.push('x');
        fails(&bad, &net, "disclosure.commitment", Some(0));

        let mut bad = b.clone();
        bad.disclosures[0].field = personal::PersonalField::ReceivedBy;
        fails(&bad, &net, "disclosure.field", Some(0));

        let mut bad = b.clone();
        bad.disclosures[0].event_id = Digest::ZERO;
        fails(&bad, &net, "disclosure.event", Some(0));
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
        b.shipment_proof.siblings[0].0[0] ^= 1;
        fails(&b, &net, "bundle.complete", None);

        let mut b = original.clone();
        b.shipment_proof.siblings.pop();
        fails(&b, &net, "bundle.complete", None);

        let mut b = original.clone();
        b.checkpoint.certificate.signatures[0].signature.0[5] ^= 1;
        fails(&b, &net, "checkpoint.certificate", None);

        let mut b = original.clone();
        b.checkpoint.header.log_size += 1;
        fails(&b, &net, "checkpoint.header", None);

        let mut b = original.clone();
        b.events.swap(0, 1);
        fails(&b, &net, "event.chain", Some(0));

        let mut b = original.clone();
        b.events.swap(1, 2);
        fails(&b, &net, "event.chain", Some(1));

        // Entries that chain but claim a log index out of order.
        let mut b = original.clone();
        b.events[1].log_index = b.events[0].log_index;
        fails(&b, &net, "event.order", Some(1));

        let mut b = original.clone();
        b.events[4].event.signature.0[0] ^= 1;
        fails(&b, &net, "event.json", Some(4));

        let mut b = original.clone();
        b.shipment_id = ShipmentId::new("B-B");
        fails(&b, &net, "event.shipment", Some(0));

        // Migration (issue 15): a format v3 bundle is refused by its format, not misread.
        let mut b = original.clone();
        b.format = "custody-bundle/v1".into();
        fails(&b, &net, "bundle.format", None);

        let mut other = TestNet::new().genesis;
        other.chain_id = "another-chain".into();
        let error = verify(&original, &other).expect_err("wrong genesis");
        assert_eq!(error.check, "bundle.genesis");
    }
}
