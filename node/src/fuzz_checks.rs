//! The checks the fuzz targets run, one per way untrusted bytes reach a node or a verifier.
//!
//! `fuzz/` drives each check with libFuzzer (`fuzz/run`), and `tests/fuzz_corpus.rs` replays
//! every committed input (the seed corpora and the inputs of past findings) through the same
//! checks in `cargo test`, so a fixed finding stays fixed without building libFuzzer. The
//! checks live here, behind the `fuzzing` feature, because this crate reads every one of
//! these inputs (HTTP bodies, gossip, consensus frames) and depends on every crate whose
//! decoders they exercise; the feature brings the test kit's network that the fixtures use.
//!
//! Each check hands the bytes to the decoder the production path uses, then goes as far as
//! that path would with what decoded (signatures, the rule modules and the state machine
//! against a ledger with history, bundle verification), and panics, which is the fuzzer's
//! finding, only when a property fails:
//! - nothing panics, whatever the input;
//! - a canonical codec (events, gossip batches, consensus frames) gives back exactly the
//!   input when it re-encodes what it accepted, so one value has one encoding;
//! - a JSON body that parses reads back to the same value from its own serialisation, and an
//!   event accepted as JSON has canonical bytes that decode to the same event;
//! - verification (signatures, rules, bundles, disclosures) answers yes or no and never
//!   panics.
//!
//! Signatures are not forged by a fuzzer, so the rule modules and the state machine see each
//! decoded event whether or not its signature verifies: a member can sign anything, and what
//! the rules do with a member's malformed event is what matters.
//!
//! [`seeds`] writes the seed corpora: real values of every kind, built from the test kit.

use std::slice;
use std::sync::OnceLock;

use arc_malachitebft_app_channel::app::consensus::{
    LivenessMsg, ProposedValue, SignedConsensusMsg,
};
use arc_malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::codec::Codec;
use arc_malachitebft_app_channel::app::types::core::{
    ExtendedCommitCertificate, NilOrVal, PolkaCertificate, Round, RoundCertificate,
    RoundCertificateType, SignedMessage, ValidatorProof, Validity, VoteType,
};
use arc_malachitebft_app_channel::app::types::sync::{self, RawDecidedValue};
use arc_malachitebft_app_channel::app::types::PeerId;
use arc_malachitebft_signing::Verifier;
use arc_malachitebft_sync::{ValueRequest, ValueResponse};
use bytes::Bytes;
use custody_contracts::load::{de_minimis_events, sample_tables};
use custody_contracts::registry::{LATEST_RULES_VERSION, RULES_VERSIONS};
use custody_contracts::ContractRules;
use custody_epcis::mapping::{CommittedEvent, MappingContext, ProposalContext, ShipmentContext};
use custody_ledger::bundle::{self, Bundle};
use custody_ledger::codec::{self, EVENT_SIZE_BYTES_MAX};
use custody_ledger::event::{self as ledger_event, check_encoded, check_occurred_at, EncodedEvent};
use custody_ledger::genesis::Genesis;
use custody_ledger::model::*;
use custody_ledger::personal::DiscloseRequest;
use custody_ledger::rules::Rules;
use custody_ledger::state::{apply, BlockContext, State};
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::{self, TestNet, GENESIS_TIME};
use custody_ledger::{Digest, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::consensus::codec::{CodecError, CustodyCodec};
use crate::consensus::context::{Address, BlockValue, CustodyContext, Height, Proposal, Vote};
use crate::consensus::context::{EventRef, ProposalPart, ValidatorSet};
use crate::consensus::host::SyncedBlock;
use crate::consensus::signing::{parts_message, proposal_bytes, vote_bytes, CustodyVerifier};
use crate::epcis::capture::CAPTURE_EVENTS_MAX;
use crate::personal::{auth, share, DISCLOSURES_MAX};

/// What a check made of its input: refused by the decoder, or decoded. The replay test asks
/// each corpus for an input that decodes, so that a format change cannot leave a corpus of
/// inputs that all stop at the first error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The decoder refused the bytes.
    Refused,
    /// The bytes decoded (what the verifiers then said is not part of the outcome).
    Decoded,
}

/// A fuzz target: its name (the binary in `fuzz/` and the directory of its corpora) and its
/// check.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name.
    pub name: &'static str,
    /// The check.
    pub check: fn(&[u8]) -> Outcome,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "event",
        check: event,
    },
    Target {
        name: "event_json",
        check: event_json,
    },
    Target {
        name: "consensus",
        check: consensus,
    },
    Target {
        name: "gossip",
        check: gossip,
    },
    Target {
        name: "bundle",
        check: bundle,
    },
    Target {
        name: "genesis",
        check: genesis,
    },
    Target {
        name: "quote",
        check: quote,
    },
    Target {
        name: "epcis_capture",
        check: epcis_capture,
    },
    Target {
        name: "personal",
        check: personal,
    },
];

/// The target of a name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: a test network with a short history, built once per process.
// ---------------------------------------------------------------------------------------------

/// The shipment with a whole lifecycle on the fixture ledger.
const DELIVERED: &str = "FZ-1";
/// A shipment half-way: registered and handed to the air carrier, so that later steps apply.
const IN_TRANSIT: &str = "FZ-2";
/// The member whose key the EPCIS capture gateway signs with.
const GATEWAY_MEMBER: &str = "carrier-swift";
/// The gossip message limit a node configures: one event at the limit and the framing.
const GOSSIP_MESSAGE_SIZE_BYTES_MAX: usize = EVENT_SIZE_BYTES_MAX + 1024;

struct Fixtures {
    net: TestNet,
    /// Reference tables, a delivered shipment and one in transit, over two blocks.
    store: MemoryStore,
    /// The rules after the tables were published.
    rules: ContractRules,
    /// The delivered shipment's events, in order.
    delivered: Vec<EncodedEvent>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let net = TestNet::new().with_rules_version(LATEST_RULES_VERSION);
        let store = MemoryStore::new(net.genesis_hash());
        let tables: Vec<EncodedEvent> = sample_tables(GENESIS_TIME)
            .into_iter()
            .chain(de_minimis_events())
            .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
            .collect();
        let published = net
            .commit_with(&store, &ContractRules::default(), tables, GENESIS_TIME)
            .expect("the memory store does not fail");
        assert_eq!(published.rejected, vec![], "the sample tables publish");
        let delivered = net.lifecycle(DELIVERED)[..9].to_vec();
        let mut history = delivered.clone();
        history.extend(net.lifecycle(IN_TRANSIT)[..3].iter().cloned());
        // The state machine alone: the test kit's declaration is for France, whose tariff the
        // sample tables lack, and the fixture needs the history, not a customs verdict.
        let built = net
            .commit(&store, history, Timestamp(GENESIS_TIME.0 + 60_000))
            .expect("the memory store does not fail");
        assert_eq!(built.rejected, vec![], "the history commits");
        Fixtures {
            net,
            store,
            rules: published.into_rules(),
            delivered,
        }
    })
}

/// Judges a decoded event as the next block would, signature aside: its size and shape, its
/// time, the rule modules and the state machine, against the fixture ledger.
fn judge(event: &EncodedEvent) {
    let fx = fixtures();
    let genesis = &fx.net.genesis;
    if check_encoded(event, &genesis.chain_id).is_err() {
        return;
    }
    let head = fx
        .store
        .head()
        .expect("the memory store does not fail")
        .expect("the fixture ledger has blocks");
    let ctx = BlockContext {
        height: head.height + 1,
        time: Timestamp(head.time.0 + 60_000),
    };
    let _ = check_occurred_at(event.event(), genesis.genesis_time, ctx.time);
    let mut state = fx
        .store
        .load_state(genesis, slice::from_ref(event))
        .expect("the memory store does not fail");
    if fx.rules.check(&state, event, ctx).is_ok() {
        let _ = apply(&mut state, event, ctx);
    }
}

/// Serialises a parsed JSON value and parses it again: it must read back as itself.
fn json_reads_back<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let text = serde_json::to_vec(value).expect("a parsed value serialises");
    let again: T = serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "a parsed value does not read back from its own JSON ({e}): {}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(&again, value, "a parsed value reads back as another");
}

/// The checks of an event that decoded from canonical bytes.
fn decoded_event(event: &EncodedEvent, bytes: &[u8]) {
    assert_eq!(
        codec::encode(&event.event()),
        bytes,
        "a decoded event re-encodes to other bytes"
    );
    assert_eq!(event.id(), ledger_event::event_id(bytes));
    // The fast path (the body sliced from the bytes) and the full re-encoding agree.
    assert_eq!(
        event.signing_message(),
        ledger_event::signing_message(&event.event().event)
    );
    assert_eq!(
        event.verify_signature().is_ok(),
        ledger_event::verify_signature(event.event()).is_ok()
    );
    judge(event);
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

/// A signed event in canonical bytes (`POST /v1/events` as `application/octet-stream`, and
/// every event inside a gossip batch, a proposal or a synced block).
pub fn event(bytes: &[u8]) -> Outcome {
    let Ok(event) = EncodedEvent::decode_untrusted(bytes) else {
        return Outcome::Refused;
    };
    decoded_event(&event, bytes);
    Outcome::Decoded
}

/// A signed event in JSON (`POST /v1/events` as `application/json`).
pub fn event_json(bytes: &[u8]) -> Outcome {
    let Ok(signed) = serde_json::from_slice::<SignedEvent>(bytes) else {
        return Outcome::Refused;
    };
    json_reads_back(&signed);
    let Ok(event) = EncodedEvent::from_untrusted(signed) else {
        return Outcome::Refused;
    };
    let decoded = EncodedEvent::decode(event.bytes())
        .expect("the canonical bytes of an event read from JSON decode");
    assert_eq!(decoded, event, "an event read from JSON decodes as another");
    decoded_event(&event, event.bytes());
    Outcome::Decoded
}

/// Decodes one consensus frame as `T` and, when it decodes, encodes it again: the same bytes.
fn frame<T>(bytes: &[u8]) -> Option<T>
where
    CustodyCodec: Codec<T, Error = CodecError>,
{
    let value = CustodyCodec.decode(Bytes::copy_from_slice(bytes)).ok()?;
    let again = CustodyCodec
        .encode(&value)
        .expect("a decoded frame encodes again");
    assert_eq!(
        again.as_ref(),
        bytes,
        "a decoded frame re-encodes to other bytes"
    );
    Some(value)
}

/// The kinds of consensus frame, in the order of the first input byte.
const FRAME_KINDS: u8 = 10;

/// The events of a proposal part, decoded as the host decodes them.
fn part_events(part: &ProposalPart) {
    if let ProposalPart::Events(events) = part {
        for entry in events {
            if let EventRef::Body(bytes) = entry {
                if let Ok(event) = EncodedEvent::decode(bytes) {
                    decoded_event(&event, bytes);
                }
            }
        }
    }
}

/// Verifies a signed vote as the engine asks the verifier to.
fn verify_vote(verifier: &CustodyVerifier, vote: &SignedMessage<CustodyContext, Vote>) {
    let _ = futures::executor::block_on(verifier.verify_signed_vote(
        &vote.message,
        &vote.signature,
        &vote.message.validator.0,
    ));
}

/// A consensus frame: the first byte chooses what the rest is (a proposal part, a stream
/// message, a vote or proposal, a liveness message, a validator proof, a polka certificate, a
/// proposed value, a sync status, request or response), as the engine's channel would.
pub fn consensus(bytes: &[u8]) -> Outcome {
    let Some((&kind, bytes)) = bytes.split_first() else {
        return Outcome::Refused;
    };
    let verifier = CustodyVerifier::new(fixtures().net.genesis.chain_id.clone());
    let decoded = match kind % FRAME_KINDS {
        0 => frame::<ProposalPart>(bytes).map(|part| part_events(&part)),
        1 => frame::<StreamMessage<ProposalPart>>(bytes).map(|message| {
            if let StreamContent::Data(part) = &message.content {
                part_events(part);
            }
        }),
        2 => frame::<SignedConsensusMsg<CustodyContext>>(bytes).map(|message| match &message {
            SignedConsensusMsg::Vote(vote) => verify_vote(&verifier, vote),
            SignedConsensusMsg::Proposal(proposal) => {
                let _ = futures::executor::block_on(verifier.verify_signed_proposal(
                    &proposal.message,
                    &proposal.signature,
                    &proposal.message.proposer.0,
                ));
            }
        }),
        3 => frame::<LivenessMsg<CustodyContext>>(bytes).map(|message| {
            if let LivenessMsg::Vote(vote) = &message {
                verify_vote(&verifier, vote);
            }
        }),
        4 => frame::<ValidatorProof<CustodyContext>>(bytes).map(|proof| {
            let _ = futures::executor::block_on(verifier.verify_validator_proof(&proof));
        }),
        5 => frame::<PolkaCertificate<CustodyContext>>(bytes).map(drop),
        6 => frame::<ProposedValue<CustodyContext>>(bytes).map(drop),
        7 => frame::<sync::Status<CustodyContext>>(bytes).map(drop),
        8 => frame::<sync::Request<CustodyContext>>(bytes).map(drop),
        _ => frame::<sync::Response<CustodyContext>>(bytes).map(|response| {
            let sync::Response::ValueResponse(response) = response;
            // Each value as the host reads a synced block: the block, then its events.
            for value in &response.values {
                let Ok(synced) =
                    codec::decode::<SyncedBlock>(&value.value_bytes, codec::BLOCK_SIZE_BYTES_MAX)
                else {
                    continue;
                };
                for bytes in &synced.events {
                    if let Ok(event) = EncodedEvent::decode(bytes) {
                        decoded_event(&event, bytes);
                    }
                }
            }
        }),
    };
    match decoded {
        Some(()) => Outcome::Decoded,
        None => Outcome::Refused,
    }
}

/// A gossip message: a batch of events in canonical bytes, each judged as a node judges it.
pub fn gossip(bytes: &[u8]) -> Outcome {
    let Ok(events) = crate::gossip::decode_batch(bytes, GOSSIP_MESSAGE_SIZE_BYTES_MAX) else {
        return Outcome::Refused;
    };
    assert_eq!(
        crate::gossip::encode_batch(&events),
        bytes,
        "a decoded batch re-encodes to other bytes"
    );
    for bytes in &events {
        if let Ok(event) = EncodedEvent::decode_untrusted(bytes) {
            decoded_event(&event, bytes);
        }
    }
    Outcome::Decoded
}

/// A provenance bundle in JSON, verified against the network's genesis (`custody verify`).
pub fn bundle(bytes: &[u8]) -> Outcome {
    let Ok(bundle) = serde_json::from_slice::<Bundle>(bytes) else {
        return Outcome::Refused;
    };
    json_reads_back(&bundle);
    let genesis = &fixtures().net.genesis;
    if let Ok(verified) = bundle::verify(&bundle, genesis) {
        assert_eq!(verified.shipment_id, bundle.shipment_id);
        assert_eq!(verified.events.len(), bundle.events.len());
        assert_eq!(verified.height, bundle.checkpoint.header.height);
    }
    let _ = bundle::verify_checkpoint(&bundle.checkpoint, genesis);
    Outcome::Decoded
}

/// A genesis file (`custody-node` reads it at start, `custody verify` with every bundle).
pub fn genesis(bytes: &[u8]) -> Outcome {
    let Ok(genesis) = serde_json::from_slice::<Genesis>(bytes) else {
        return Outcome::Refused;
    };
    json_reads_back(&genesis);
    let _ = genesis.hash();
    if genesis.validate().is_ok() {
        // What a node builds from a valid genesis before anything else.
        assert!(genesis.total_power() > 0);
        let _ = State::from_genesis(&genesis);
        let validators = ValidatorSet::from_genesis(&genesis);
        assert_eq!(validators.validators().len(), genesis.validators().len());
        for validator in genesis.validators() {
            let _ = crate::keys::peer_id(&validator.key);
        }
        for height in [0, 1, u64::MAX] {
            let _ = genesis.rules_version_at(height);
        }
    }
    Outcome::Decoded
}

/// A quote request (`POST /v1/quote`), quoted against the sample tables under every rules
/// version.
pub fn quote(bytes: &[u8]) -> Outcome {
    let Ok(draft) = crate::quote::parse_draft(bytes) else {
        return Outcome::Refused;
    };
    json_reads_back(&draft);
    let at = draft.at.unwrap_or(GENESIS_TIME);
    for &version in RULES_VERSIONS {
        match crate::quote::quote(&fixtures().rules, at, version, &draft) {
            Ok(quote) => {
                serde_json::to_vec(&quote).expect("a quote serialises");
            }
            Err(error) => assert!(
                error.status == 400 || error.status == 422,
                "a refused quote is the client's fault: {error:?}"
            ),
        }
    }
    Outcome::Decoded
}

/// An EPCIS capture document (`POST /epcis/capture`, `custody epcis hash`): every event mapped
/// to a draft, signed by the gateway's member and judged.
pub fn epcis_capture(bytes: &[u8]) -> Outcome {
    let Ok(document) = serde_json::from_slice::<Value>(bytes) else {
        return Outcome::Refused;
    };
    let _ = custody_epcis::document_hash_ids(&document);
    if document.get("type").and_then(Value::as_str) != Some("EPCISDocument") {
        return Outcome::Refused;
    }
    let Ok(events) = custody_epcis::events_of(&document) else {
        return Outcome::Refused;
    };
    let fx = fixtures();
    for epcis in events.iter().take(CAPTURE_EVENTS_MAX) {
        let _ = custody_epcis::event_hash_id(epcis);
        let Ok(draft) = custody_epcis::from_epcis(epcis) else {
            continue;
        };
        let body = Event {
            chain_id: fx.net.genesis.chain_id.clone(),
            occurred_at: draft.occurred_at,
            kind: draft.kind,
        };
        let signed = ledger_event::sign(body, fx.net.key(GATEWAY_MEMBER));
        let Ok(event) = EncodedEvent::from_untrusted(signed) else {
            continue;
        };
        let decoded = EncodedEvent::decode(event.bytes())
            .expect("the canonical bytes of a captured event decode");
        assert_eq!(decoded, event, "a captured event decodes as another");
        judge(&event);
    }
    Outcome::Decoded
}

/// A personal-data write (`POST /v1/shipments/{id}/personal`): its signature, then each
/// disclosure against the ledger's commitments.
pub fn personal(bytes: &[u8]) -> Outcome {
    let Ok(request) = serde_json::from_slice::<DiscloseRequest>(bytes) else {
        return Outcome::Refused;
    };
    json_reads_back(&request);
    if request.disclosures.len() > DISCLOSURES_MAX {
        return Outcome::Refused;
    }
    let shipment = ShipmentId::new(DELIVERED);
    let _ = auth::check_write(&shipment, &request);
    let _ = share::check_against_ledger(&fixtures().store, &shipment, &request.disclosures)
        .expect("the memory store does not fail");
    Outcome::Decoded
}

// ---------------------------------------------------------------------------------------------
// Seeds.
// ---------------------------------------------------------------------------------------------

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target it is for.
    pub target: &'static str,
    /// A name that says what it is (the file name in the corpus).
    pub name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Real inputs of every target, deterministic, built from the test kit and the fixture
/// ledger: where coverage-guided mutation starts.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push(Seed {
            target,
            name: name.to_owned(),
            bytes,
        })
    };
    let fx = fixtures();
    let net = &fx.net;
    // A new shipment's registration, and the rest of the in-transit shipment's life: the
    // next handoff applies to the fixture ledger, the steps after it reach the rules that
    // refuse them in that state.
    let registration = net.register("FZ-S", "CN", "FR");
    let transit = net.lifecycle(IN_TRANSIT);
    let scan = net.scan("carrier-swift", IN_TRANSIT, "DEHAM");
    let mut samples: Vec<(&str, EncodedEvent)> = vec![("registered", registration)];
    samples.extend(
        [
            "handoff-proposed",
            "handoff-accepted",
            "customs-declared",
            "duty-paid",
            "customs-cleared",
            "delivered",
            "return-requested",
            "return-received",
        ]
        .into_iter()
        .zip(transit[3..].iter().cloned()),
    );
    samples.push(("tracking-scan", scan.clone()));
    samples.push((
        "personal-data-erased",
        net.erase_personal("seller-acme", IN_TRANSIT),
    ));
    samples.push((
        "de-minimis-published",
        net.sign(
            "customs-qx",
            EventKind::ReferenceDataPublished(de_minimis_events().remove(0)),
        ),
    ));

    for (name, event) in &samples {
        add("event", name, event.bytes().to_vec());
    }
    for (name, event) in samples.iter().take(9) {
        add(
            "event_json",
            name,
            serde_json::to_vec_pretty(&event.event()).expect("events serialise"),
        );
    }

    let bytes = |events: &[&EncodedEvent]| -> Vec<Vec<u8>> {
        events.iter().map(|e| e.bytes().to_vec()).collect()
    };
    add(
        "gossip",
        "one-event",
        crate::gossip::encode_batch(&bytes(&[&scan])),
    );
    add(
        "gossip",
        "three-events",
        crate::gossip::encode_batch(&bytes(&[&samples[0].1, &samples[1].1, &scan])),
    );
    add("gossip", "empty", crate::gossip::encode_batch(&[]));

    for (name, frame) in consensus_seeds(fx) {
        add("consensus", &name, frame);
    }

    let shipment = ShipmentId::new(DELIVERED);
    let mut full = bundle::build(&fx.store, &net.genesis, &shipment)
        .expect("the memory store does not fail")
        .expect("the shipment has events");
    full.disclosures =
        testkit::disclosures(DELIVERED, fx.delivered[0].id(), Some(fx.delivered[8].id()));
    add(
        "bundle",
        "delivered-with-disclosures",
        serde_json::to_vec_pretty(&full).expect("bundles serialise"),
    );
    let in_transit = bundle::build(&fx.store, &net.genesis, &ShipmentId::new(IN_TRANSIT))
        .expect("the memory store does not fail")
        .expect("the shipment has events");
    add(
        "bundle",
        "in-transit",
        serde_json::to_vec_pretty(&in_transit).expect("bundles serialise"),
    );

    add(
        "genesis",
        "test-network",
        serde_json::to_vec_pretty(&net.genesis).expect("a genesis serialises"),
    );
    let mut scheduled = net.genesis.clone();
    scheduled.rules_schedule.push(RulesActivation {
        version: LATEST_RULES_VERSION,
        from_height: 1_000,
    });
    scheduled.rules_schedule[0].version = 1;
    add(
        "genesis",
        "rules-schedule",
        serde_json::to_vec(&scheduled).expect("a genesis serialises"),
    );

    for (name, draft) in quote_seeds() {
        add(
            "quote",
            name,
            serde_json::to_vec_pretty(&draft).expect("drafts serialise"),
        );
    }

    add(
        "epcis_capture",
        "handoff-scan-delivery",
        serde_json::to_vec_pretty(&epcis_seed(net, &transit, &scan)).expect("JSON"),
    );

    let request = auth::sign_write(
        net.key("seller-acme"),
        &shipment,
        testkit::disclosures(DELIVERED, fx.delivered[0].id(), Some(fx.delivered[8].id())),
    );
    add(
        "personal",
        "buyer-and-receiver",
        serde_json::to_vec_pretty(&request).expect("requests serialise"),
    );
    let unsigned = DiscloseRequest {
        disclosures: Vec::new(),
        signer: net.key("auditor-ivy").public(),
        signature: request.signature,
    };
    add(
        "personal",
        "empty-unsigned",
        serde_json::to_vec(&unsigned).expect("requests serialise"),
    );
    out
}

/// Frames of every consensus kind (the first byte is the kind), over the fixture ledger's
/// last block.
fn consensus_seeds(fx: &Fixtures) -> Vec<(String, Vec<u8>)> {
    let chain_id = fx.net.genesis.chain_id.as_str();
    let block = fx
        .store
        .block(2)
        .expect("the memory store does not fail")
        .expect("the fixture ledger has two blocks");
    let header = block.header.clone();
    let height = Height(header.height);
    let value = BlockValue::new(header.clone());
    let hash = value.hash;
    let round = Round::new(1);
    let events: Vec<Vec<u8>> = block.events.iter().map(|e| e.bytes().to_vec()).collect();
    let keys = fx.net.validator_keys();
    let address = |i: usize| Address(keys[i].public());
    let proposer = address(0);

    let vote = |i: usize, vote_type: VoteType, value: NilOrVal<Digest>| {
        let vote = Vote::new(vote_type, height, round, value, address(i));
        let signature = keys[i].sign(&vote_bytes(chain_id, &vote));
        SignedMessage::new(vote, signature)
    };
    let prevotes: Vec<_> = (0..keys.len())
        .map(|i| vote(i, VoteType::Prevote, NilOrVal::Val(hash)))
        .collect();
    let precommits: Vec<_> = (0..keys.len())
        .map(|i| vote(i, VoteType::Precommit, NilOrVal::Val(hash)))
        .collect();
    let proposal = Proposal {
        height,
        round,
        value: value.clone(),
        pol_round: Round::Nil,
        proposer,
    };
    let proposal = SignedMessage::new(
        proposal.clone(),
        keys[0].sign(&proposal_bytes(chain_id, &proposal)),
    );
    let parts = [
        ProposalPart::Init {
            height,
            round,
            pol_round: Round::Nil,
            proposer,
            header: header.clone(),
        },
        ProposalPart::Events(events.iter().cloned().map(EventRef::Body).collect()),
        ProposalPart::Fin {
            signature: keys[0].sign(&parts_message(
                chain_id,
                height,
                round,
                &Digest::sha256(b"parts"),
            )),
        },
    ];
    let peer_id = crate::keys::peer_id(&keys[0].public())
        .expect("an ed25519 key is a peer id")
        .to_bytes();
    let proof_signature = keys[0].sign(&ValidatorProof::<CustodyContext>::signing_bytes(
        &keys[0].public().0,
        &peer_id,
    ));
    let proof = ValidatorProof::<CustodyContext>::new(
        keys[0].public().0.to_vec(),
        peer_id.clone(),
        proof_signature,
    );
    let polka = PolkaCertificate::new(height, round, hash, prevotes.clone());
    let skip = RoundCertificate::new_from_votes(
        height,
        round,
        RoundCertificateType::Precommit,
        precommits.clone(),
    );
    let synced = SyncedBlock {
        header: header.clone(),
        events,
    };
    let certificate = ExtendedCommitCertificate::from_votes(height, round, hash, precommits);
    let response = sync::Response::ValueResponse(ValueResponse::new(
        height,
        vec![RawDecidedValue::new(
            Bytes::from(codec::encode(&synced)),
            certificate,
        )],
    ));

    fn tagged<T>(kind: u8, value: &T) -> Vec<u8>
    where
        CustodyCodec: Codec<T, Error = CodecError>,
    {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&CustodyCodec.encode(value).expect("seeds encode"));
        bytes
    }
    let stream_id = StreamId::new(Bytes::from(codec::encode(&(height.0, round.as_i64()))));
    vec![
        ("part-init".to_owned(), tagged(0, &parts[0])),
        ("part-events".to_owned(), tagged(0, &parts[1])),
        ("part-fin".to_owned(), tagged(0, &parts[2])),
        (
            "stream-init".to_owned(),
            tagged(
                1,
                &StreamMessage::new(stream_id.clone(), 0, StreamContent::Data(parts[0].clone())),
            ),
        ),
        (
            "stream-fin".to_owned(),
            tagged(1, &StreamMessage::new(stream_id, 3, StreamContent::Fin)),
        ),
        (
            "prevote".to_owned(),
            tagged(2, &SignedConsensusMsg::Vote(prevotes[1].clone())),
        ),
        (
            "nil-precommit".to_owned(),
            tagged(
                2,
                &SignedConsensusMsg::Vote(vote(2, VoteType::Precommit, NilOrVal::Nil)),
            ),
        ),
        (
            "proposal".to_owned(),
            tagged(2, &SignedConsensusMsg::Proposal(proposal)),
        ),
        (
            "liveness-vote".to_owned(),
            tagged(3, &LivenessMsg::Vote(prevotes[2].clone())),
        ),
        (
            "liveness-round-certificate".to_owned(),
            tagged(3, &LivenessMsg::SkipRoundCertificate(skip)),
        ),
        ("validator-proof".to_owned(), tagged(4, &proof)),
        ("polka-certificate".to_owned(), tagged(5, &polka)),
        (
            "proposed-value".to_owned(),
            tagged(
                6,
                &ProposedValue {
                    height,
                    round,
                    valid_round: Round::Nil,
                    proposer,
                    value,
                    validity: Validity::Valid,
                },
            ),
        ),
        (
            "sync-status".to_owned(),
            tagged(
                7,
                &sync::Status {
                    peer_id: PeerId::from_bytes(&peer_id).expect("a valid peer id"),
                    tip_height: height,
                    history_min_height: Height(1),
                },
            ),
        ),
        (
            "sync-request".to_owned(),
            tagged(
                8,
                &sync::Request::ValueRequest(ValueRequest::new(Height(1)..=height)),
            ),
        ),
        ("sync-response".to_owned(), tagged(9, &response)),
    ]
}

/// Drafts for the quote endpoint: each regime of the sample jurisdictions, and refusals.
fn quote_seeds() -> Vec<(&'static str, Value)> {
    let draft = |destination: &str, quantity: u64, unit_value_minor: u64| {
        json!({
            "origin": "CN",
            "destination": destination,
            "incoterm": "DAP",
            "transport_mode": "courier",
            "currency": "EUR",
            "lines": [{
                "description": "Cotton T-shirt",
                "hs_code": "6109.10",
                "tariff_code": "610910",
                "quantity": quantity,
                "unit": "PCE",
                "unit_value_minor": unit_value_minor,
                "net_weight_grams": 200 * quantity,
                "origin_country": "CN"
            }],
            "freight_minor": 1_000,
            "insurance_minor": 200,
            "seller_registrations": [],
            "at": GENESIS_TIME
        })
    };
    let mut two_lines = draft("QX", 20, 1_500);
    two_lines["lines"]
        .as_array_mut()
        .expect("lines")
        .push(json!({
            "description": "Leather shoes",
            "hs_code": "6403.99",
            "quantity": 2,
            "unit": "PCE",
            "unit_value_minor": 8_000,
            "net_weight_grams": 1_600,
            "origin_country": "VN"
        }));
    let usd = json!({ "from": "EUR", "to": "USD", "numerator": 108, "denominator": 100 });
    let mut registered = draft("QY", 1, 2_000);
    registered["exchange_rate"] = usd.clone();
    registered["incoterm"] = json!("DDP");
    registered["seller_registrations"] = json!([{ "scheme": "IOSS", "value": "IM2500000001" }]);
    let mut converted = draft("QY", 3, 4_000);
    converted["exchange_rate"] = usd;
    vec![
        ("full-declaration", draft("QX", 20, 1_500)),
        ("low-value", draft("QX", 1, 900)),
        ("two-lines", two_lines),
        ("seller-registered", registered),
        ("exchange-rate", converted),
    ]
}

/// An EPCISDocument with a handoff proposal and its acceptance, a tracking scan and a
/// delivery of a shipment's `lifecycle`, as Custody writes them.
fn epcis_seed(net: &TestNet, lifecycle: &[EncodedEvent], scan: &EncodedEvent) -> Value {
    let member = |event: &EncodedEvent| {
        testkit::MEMBERS
            .iter()
            .find(|(id, _, _)| net.key(id).public() == event.event().signer)
            .map(|(id, _, _)| MemberId::new(*id))
            .expect("a test member signed")
    };
    let EventKind::ShipmentRegistered(registration) = &lifecycle[0].event().event.kind else {
        unreachable!("a lifecycle starts with its registration")
    };
    let EventKind::HandoffProposed(proposal) = &lifecycle[3].event().event.kind else {
        unreachable!("the fourth event of a lifecycle is the second handoff's proposal")
    };
    let shipment = |proposal: Option<ProposalContext>| ShipmentContext {
        seller: member(&lifecycle[0]),
        registration: registration.clone(),
        proposal,
    };
    let mapped = [
        (&lifecycle[3], None),
        (
            &lifecycle[4],
            Some(ProposalContext {
                from: member(&lifecycle[3]),
                proposal: proposal.clone(),
            }),
        ),
        (scan, None),
        (&lifecycle[8], None),
    ];
    let events: Vec<Value> = mapped
        .into_iter()
        .enumerate()
        .map(|(i, (event, proposal))| {
            let committed = CommittedEvent {
                event: event.event(),
                id: event.id(),
                height: 2,
                log_index: i as u64,
                recorded_at: Timestamp(GENESIS_TIME.0 + 60_000),
            };
            let ctx = MappingContext {
                signer: member(event),
                shipment: Some(shipment(proposal)),
            };
            custody_epcis::to_epcis(&committed, &ctx).expect("these kinds have an EPCIS form")
        })
        .collect();
    custody_epcis::DocumentBuilder::new(GENESIS_TIME)
        .events(events)
        .epcis_document()
}
