//! Signing, ids and shape checks of events.

use std::sync::Arc;

use crate::codec::{self, CodecError, EVENT_SIZE_BYTES_MAX};
use crate::hash::{domain, Digest};
use crate::keys::{verify_batch, KeyCache, KeyError, Keypair, SignedMessage};
use crate::model::*;
use crate::reject::{codes, Rejection};
use crate::time::Timestamp;

/// The bytes a signer signs: the signature domain, then the canonical body.
pub fn signing_message(event: &Event) -> Vec<u8> {
    let body = codec::encode(event);
    let mut message = Vec::with_capacity(domain::EVENT_SIGNATURE.len() + body.len());
    message.extend_from_slice(domain::EVENT_SIGNATURE);
    message.extend_from_slice(&body);
    message
}

/// The bytes an admin signs to approve a membership change on a given chain.
pub fn membership_approval_message(chain_id: &str, change: &MembershipChange) -> Vec<u8> {
    let body = codec::encode(&(chain_id, change));
    let mut message = Vec::with_capacity(domain::MEMBERSHIP_APPROVAL.len() + body.len());
    message.extend_from_slice(domain::MEMBERSHIP_APPROVAL);
    message.extend_from_slice(&body);
    message
}

/// Signs an event body.
pub fn sign(event: Event, keypair: &Keypair) -> SignedEvent {
    let signature = keypair.sign(&signing_message(&event));
    SignedEvent {
        event,
        signer: keypair.public(),
        signature,
    }
}

/// Signs an approval of a membership change.
pub fn approve(chain_id: &str, change: &MembershipChange, admin: &Keypair) -> Approval {
    Approval {
        admin: admin.public(),
        signature: admin.sign(&membership_approval_message(chain_id, change)),
    }
}

/// The id of a signed event from its canonical bytes.
pub fn event_id(canonical_bytes: &[u8]) -> EventId {
    Digest::of(domain::EVENT, &[canonical_bytes])
}

/// A signed event together with its canonical bytes and id, computed once.
///
/// Everything downstream of decoding (mempool, blocks, store) passes this around so that no
/// event is encoded or hashed twice. The fields are private so that the three always agree:
/// the bytes are the canonical encoding of the event and the id is their hash.
///
/// The three live behind one `Arc`: an event is held at once by the mempool, a candidate
/// block, the gossip publisher and the proposal being streamed, and a clone must cost a
/// reference count, not a copy of the event (issue 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent(Arc<Encoded>);

#[derive(Debug, PartialEq, Eq)]
struct Encoded {
    id: EventId,
    bytes: Vec<u8>,
    event: SignedEvent,
}

impl EncodedEvent {
    fn from_parts(id: EventId, bytes: Vec<u8>, event: SignedEvent) -> EncodedEvent {
        EncodedEvent(Arc::new(Encoded { id, bytes, event }))
    }

    /// Encodes an event.
    pub fn new(event: SignedEvent) -> EncodedEvent {
        let bytes = codec::encode(&event);
        EncodedEvent::from_parts(event_id(&bytes), bytes, event)
    }

    /// Encodes an event that came from outside in another form (JSON), refusing one whose
    /// canonical bytes are longer than an event may be: the same limit the binary path
    /// enforces while decoding, so neither path lets in an event no block can carry.
    pub fn from_untrusted(event: SignedEvent) -> Result<EncodedEvent, Rejection> {
        let encoded = EncodedEvent::new(event);
        check_size(encoded.bytes().len())?;
        Ok(encoded)
    }

    /// Decodes canonical bytes, at most [`EVENT_SIZE_BYTES_MAX`] long.
    pub fn decode(bytes: &[u8]) -> Result<EncodedEvent, CodecError> {
        let event: SignedEvent = codec::decode(bytes, EVENT_SIZE_BYTES_MAX)?;
        Ok(EncodedEvent::from_parts(
            event_id(bytes),
            bytes.to_vec(),
            event,
        ))
    }

    /// Decodes canonical bytes received from outside (API, gossip), reporting bytes longer
    /// than an event may be as `event.too_large` and any other failure as `event.malformed`.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<EncodedEvent, Rejection> {
        check_size(bytes.len())?;
        EncodedEvent::decode(bytes).map_err(|error| {
            Rejection::new(
                codes::EVENT_MALFORMED,
                "event",
                format!("not a canonical signed event: {error}"),
            )
        })
    }

    /// The event id: the hash of [`EncodedEvent::bytes`].
    pub fn id(&self) -> EventId {
        self.0.id
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// The decoded event.
    pub fn event(&self) -> &SignedEvent {
        &self.0.event
    }

    /// The decoded event, giving up the bytes (copied only if another holder shares them).
    pub fn into_event(self) -> SignedEvent {
        self.into_parts().1
    }

    /// The canonical bytes, giving up the decoded event (copied only if another holder
    /// shares them).
    pub fn into_bytes(self) -> Vec<u8> {
        match Arc::try_unwrap(self.0) {
            Ok(encoded) => encoded.bytes,
            Err(shared) => shared.bytes.clone(),
        }
    }

    /// The canonical bytes and the decoded event (copied only if another holder shares
    /// them).
    pub fn into_parts(self) -> (Vec<u8>, SignedEvent) {
        match Arc::try_unwrap(self.0) {
            Ok(encoded) => (encoded.bytes, encoded.event),
            Err(shared) => (shared.bytes.clone(), shared.event.clone()),
        }
    }

    /// Single verification of the signature (the cofactored rule of event signatures,
    /// `docs/PROTOCOL.md` §5.3), without keeping the proof: for checks that report and go on.
    /// What enters a mempool or a block is [`EncodedEvent::verify`]'s.
    pub fn verify_signature(&self) -> Result<(), Rejection> {
        self.event()
            .signer
            .verify_cofactored(&self.signing_message(), &self.event().signature)
            .map_err(signature_rejection)
    }

    /// Single verification of the signature (cofactored, `docs/PROTOCOL.md` §5.3: the same
    /// verdict as [`verify_events`]'s batch, in any batch): the one way, with
    /// [`verify_events`], to get a [`VerifiedEvent`].
    pub fn verify(self, keys: &KeyCache) -> Result<VerifiedEvent, Rejection> {
        keys.verify_cofactored(
            &self.event().signer,
            &self.signing_message(),
            &self.event().signature,
        )
        .map_err(signature_rejection)?;
        Ok(VerifiedEvent(self))
    }

    /// The message the signer signed, taken from the canonical bytes without re-encoding;
    /// the codec knows where the body ends (`docs/PROTOCOL.md` §4.1).
    pub fn signing_message(&self) -> Vec<u8> {
        let body = codec::signed_event_body(self.bytes())
            .expect("an encoded event's bytes are a signed event's canonical encoding");
        debug_assert_eq!(
            body,
            codec::encode(&self.event().event).as_slice(),
            "the body of an encoded event's bytes is its event's canonical encoding"
        );
        let mut message = Vec::with_capacity(domain::EVENT_SIGNATURE.len() + body.len());
        message.extend_from_slice(domain::EVENT_SIGNATURE);
        message.extend_from_slice(body);
        message
    }
}

/// An event whose signature was checked (singly, or in a batch that reaches the single
/// check's verdict on every event): the only kind of event a mempool holds and a block is built or validated from.
///
/// Only [`EncodedEvent::verify`] and [`verify_events`] make one, so an unchecked event cannot
/// reach block building or validation: the type does not allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent(EncodedEvent);

impl VerifiedEvent {
    /// The event, forgetting that it was verified.
    pub fn into_encoded(self) -> EncodedEvent {
        self.0
    }

    /// The event.
    pub fn encoded(&self) -> &EncodedEvent {
        &self.0
    }
}

impl std::ops::Deref for VerifiedEvent {
    type Target = EncodedEvent;

    fn deref(&self) -> &EncodedEvent {
        &self.0
    }
}

impl AsRef<EncodedEvent> for EncodedEvent {
    fn as_ref(&self) -> &EncodedEvent {
        self
    }
}

impl AsRef<EncodedEvent> for VerifiedEvent {
    fn as_ref(&self) -> &EncodedEvent {
        &self.0
    }
}

impl From<VerifiedEvent> for EncodedEvent {
    fn from(event: VerifiedEvent) -> EncodedEvent {
        event.0
    }
}

/// The first event of a list whose signature failed, by its position in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} ({id}): {rejection}")]
pub struct EventFailure {
    /// Position in the list.
    pub index: usize,
    /// Its id.
    pub id: EventId,
    /// Why.
    pub rejection: Rejection,
}

/// Verifies the signatures of `events` in one batch (`keys::verify_batch`: deterministic, the
/// single check's verdict on every event, and naming the first bad one when the batch
/// fails); every event comes back verified, in order. Events in `held` were verified before
/// (a node's mempool) and are taken as they are: `held(id)` answers with the verified copy of
/// that id, which is the same event since an id is the hash of the bytes.
pub fn verify_events(
    events: Vec<EncodedEvent>,
    held: impl Fn(&EventId) -> Option<VerifiedEvent>,
    keys: &KeyCache,
) -> Result<Vec<VerifiedEvent>, EventFailure> {
    let mut out: Vec<Option<VerifiedEvent>> = events.iter().map(|e| held(&e.id())).collect();
    for (known, event) in out.iter().zip(&events) {
        if let Some(known) = known {
            assert_eq!(
                known.id(),
                event.id(),
                "a held event is looked up by its id"
            );
        }
    }
    // Only the events not held go into the batch; `positions` maps a batch index back to the
    // event's index in the list, so a failure names the right event.
    let positions: Vec<usize> = (0..events.len()).filter(|i| out[*i].is_none()).collect();
    let messages: Vec<Vec<u8>> = positions
        .iter()
        .map(|i| events[*i].signing_message())
        .collect();
    let items: Vec<SignedMessage<'_>> = positions
        .iter()
        .zip(&messages)
        .map(|(i, message)| SignedMessage {
            key: &events[*i].event().signer,
            message,
            signature: &events[*i].event().signature,
        })
        .collect();
    if let Err(failure) = verify_batch(&items, keys) {
        let index = positions[failure.index];
        return Err(EventFailure {
            index,
            id: events[index].id(),
            rejection: signature_rejection(failure.error),
        });
    }
    drop(items);
    Ok(out
        .iter_mut()
        .zip(events)
        .map(|(known, event)| known.take().unwrap_or(VerifiedEvent(event)))
        .collect())
}

/// Verifies the signatures of `events` from outside (an admission batch), each on its own
/// merits: one batch for all ([`verify_events`]); when it names a bad event, the events before
/// it are verified (the failing batch checked them singly, in order), and it and the rest
/// are checked one by one, so a bad event costs its own check and never
/// refuses the others, and a batch holding many bad events costs no more than single checks.
pub fn verify_many(
    events: Vec<EncodedEvent>,
    keys: &KeyCache,
) -> Vec<Result<VerifiedEvent, Rejection>> {
    let failure = match verify_events(events.clone(), |_| None, keys) {
        Ok(verified) => return verified.into_iter().map(Ok).collect(),
        Err(failure) => failure,
    };
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            if index < failure.index {
                // Checked singly by the failing batch before it named the bad one.
                Ok(VerifiedEvent(event))
            } else {
                // The single check decides, so the verdict is the event's own.
                event.verify(keys)
            }
        })
        .collect()
}

/// Refuses an event whose canonical encoding is longer than [`EVENT_SIZE_BYTES_MAX`].
///
/// Decoding enforces the limit on bytes; this enforces it on events built in memory (from
/// JSON, or by a proposer), so that every path in, and every block, holds to the same bound.
pub fn check_size(size_bytes: usize) -> Result<(), Rejection> {
    if size_bytes > EVENT_SIZE_BYTES_MAX {
        return Err(Rejection::new(
            codes::EVENT_TOO_LARGE,
            "event",
            format!(
                "the event's canonical encoding is {size_bytes} bytes; at most \
                 {EVENT_SIZE_BYTES_MAX} bytes are allowed"
            ),
        ));
    }
    Ok(())
}

/// The checks of an encoded event that need no state: its size, then its shape.
pub fn check_encoded(event: &EncodedEvent, chain_id: &str) -> Result<(), Rejection> {
    check_size(event.bytes().len())?;
    check_shape(event.event(), chain_id)
}

/// How far after its block's time an event may say it occurred: the clock skew allowed
/// between a signer and the proposer.
pub const OCCURRED_AT_FUTURE_MS_MAX: u64 = 10 * 60 * 1000;

/// How long before the network's genesis an event may say it occurred: custody records of
/// the past year may be carried onto a new network, nothing older.
pub const OCCURRED_AT_BEFORE_GENESIS_MS_MAX: u64 = 366 * 24 * 60 * 60 * 1000;

/// Refuses an event whose `occurred_at` is implausible: more than
/// [`OCCURRED_AT_FUTURE_MS_MAX`] after the block's time, or more than
/// [`OCCURRED_AT_BEFORE_GENESIS_MS_MAX`] before the genesis time. Both bounds come from the
/// ledger (genesis and block time), so every validator and verifier judges alike.
pub fn check_occurred_at(
    event: &SignedEvent,
    genesis_time: Timestamp,
    block_time: Timestamp,
) -> Result<(), Rejection> {
    let at = event.event.occurred_at;
    let latest = block_time.0.saturating_add(OCCURRED_AT_FUTURE_MS_MAX);
    let earliest = genesis_time
        .0
        .saturating_sub(OCCURRED_AT_BEFORE_GENESIS_MS_MAX);
    if at.0 > latest {
        return Err(Rejection::new(
            codes::EVENT_IMPLAUSIBLE_TIME,
            "event.occurred_at",
            format!(
                "{at} is more than {} minutes after the block time {block_time}",
                OCCURRED_AT_FUTURE_MS_MAX / 60_000
            ),
        ));
    }
    if at.0 < earliest {
        return Err(Rejection::new(
            codes::EVENT_IMPLAUSIBLE_TIME,
            "event.occurred_at",
            format!(
                "{at} is more than {} days before the network's genesis {genesis_time}",
                OCCURRED_AT_BEFORE_GENESIS_MS_MAX / 86_400_000
            ),
        ));
    }
    Ok(())
}

/// Verification of an event's signature (cofactored, `docs/PROTOCOL.md` §5.3), as a
/// rejection on failure.
pub fn verify_signature(event: &SignedEvent) -> Result<(), Rejection> {
    event
        .signer
        .verify_cofactored(&signing_message(&event.event), &event.signature)
        .map_err(signature_rejection)
}

/// Maps a key error to the rejection the API reports.
pub fn signature_rejection(error: KeyError) -> Rejection {
    match error {
        KeyError::InvalidKey | KeyError::WeakKey => {
            Rejection::new(codes::SIGNATURE_BAD_KEY, "signer", error.to_string())
        }
        KeyError::BadSignature => Rejection::new(
            codes::SIGNATURE_INVALID,
            "signature",
            "signature does not verify under the signer key for this event body",
        ),
    }
}

/// Longest free-text field.
pub const TEXT_LEN_MAX: usize = 512;
/// Longest code-like field (document numbers, references, HS codes).
pub const CODE_LEN_MAX: usize = 64;
/// Most items in a per-shipment list (parcels, lines, tax ids).
pub const LIST_LEN_MAX: usize = 1_000;
/// Most entries in a reference table (HS subheadings, tariff lines).
pub const TABLE_LEN_MAX: usize = 20_000;
/// Most sensor readings on one tracking scan.
pub const SENSOR_READINGS_MAX: usize = 64;

struct Shape<'a> {
    path: &'a str,
}

impl Shape<'_> {
    fn fail(&self, field: &str, message: impl Into<String>) -> Rejection {
        Rejection::new(
            codes::EVENT_FIELD_INVALID,
            format!("{}.{field}", self.path),
            message,
        )
    }

    fn text(
        &self,
        field: &str,
        value: &str,
        len_max: usize,
        required: bool,
    ) -> Result<(), Rejection> {
        if required && value.trim().is_empty() {
            return Err(self.fail(field, "must not be empty"));
        }
        if value.len() > len_max {
            return Err(self.fail(
                field,
                format!("is {} bytes long; at most {len_max} allowed", value.len()),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(self.fail(field, "must not contain control characters"));
        }
        Ok(())
    }

    fn code(&self, field: &str, value: &str) -> Result<(), Rejection> {
        self.text(field, value, CODE_LEN_MAX, true)
    }

    fn list<T>(
        &self,
        field: &str,
        items: &[T],
        len_max: usize,
        required: bool,
    ) -> Result<(), Rejection> {
        if required && items.is_empty() {
            return Err(self.fail(field, "must have at least one entry"));
        }
        if items.len() > len_max {
            return Err(self.fail(
                field,
                format!("has {} entries; at most {len_max} allowed", items.len()),
            ));
        }
        Ok(())
    }

    fn shipment(&self, id: &ShipmentId) -> Result<(), Rejection> {
        if !id.is_well_formed() {
            return Err(self.fail(
                "shipment_id",
                "must be 1 to 64 characters from A-Z a-z 0-9 . _ - :",
            ));
        }
        Ok(())
    }

    fn member(&self, field: &str, id: &MemberId) -> Result<(), Rejection> {
        if !id.is_well_formed() {
            return Err(self.fail(field, "must be 1 to 64 characters from A-Z a-z 0-9 . _ - :"));
        }
        Ok(())
    }
}

/// Checks that an event is for this chain and that every field has an acceptable shape.
///
/// This bounds what an event can carry; semantic checks come later (state machine, rules).
pub fn check_shape(event: &SignedEvent, chain_id: &str) -> Result<(), Rejection> {
    if event.event.chain_id != chain_id {
        return Err(Rejection::new(
            codes::EVENT_WRONG_CHAIN,
            "event.chain_id",
            format!(
                "event is for chain {:?}, this network is {:?}",
                event.event.chain_id, chain_id
            ),
        ));
    }
    if event.event.occurred_at > TIMESTAMP_MAX {
        return Err(Rejection::new(
            codes::EVENT_FIELD_INVALID,
            "event.occurred_at",
            "must be before the year 10000",
        ));
    }
    let kind = event.event.kind.name();
    let path = format!("event.kind.{kind}");
    let s = Shape { path: &path };
    match &event.event.kind {
        EventKind::ShipmentRegistered(e) => s.registration(e),
        EventKind::HandoffProposed(e) => {
            s.shipment(&e.shipment_id)?;
            s.member("to", &e.to)?;
            s.code("place", &e.place)?;
            match &e.transport_document {
                Some(doc) => s.code("transport_document.number", &doc.number),
                None => Ok(()),
            }
        }
        EventKind::HandoffAccepted(e) => s.shipment(&e.shipment_id),
        EventKind::CustomsDeclared(e) => s.declaration(e),
        EventKind::DutyPaid(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("payment_reference", &e.payment_reference)?;
            if e.amount.amount_minor == 0 {
                return Err(s.fail("amount.amount_minor", "must be positive"));
            }
            Ok(())
        }
        EventKind::CustomsCleared(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("authority_reference", &e.authority_reference)?;
            s.text("reason", &e.reason, TEXT_LEN_MAX, false)
        }
        EventKind::Delivered(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("place", &e.place)
        }
        EventKind::ReturnRequested(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("rma", &e.rma)?;
            s.text("reason", &e.reason, TEXT_LEN_MAX, false)?;
            s.list("lines", &e.lines, LIST_LEN_MAX, true)
        }
        EventKind::ReturnReceived(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("rma", &e.rma)?;
            s.list("lines", &e.lines, LIST_LEN_MAX, true)
        }
        EventKind::DocumentAttested(e) => {
            s.shipment(&e.shipment_id)?;
            s.code("document_type", &e.document_type)?;
            s.code("reference", &e.reference)
        }
        EventKind::TrackingScanRecorded(e) => s.tracking_scan(e),
        EventKind::PersonalDataErased(e) => s.shipment(&e.shipment_id),
        EventKind::ReferenceDataPublished(e) => s.reference_data(e),
        EventKind::MembershipChanged(e) => s.membership(e),
    }
}

/// The shapes of the event kinds with more than a few fields.
impl Shape<'_> {
    fn registration(&self, e: &ShipmentRegistered) -> Result<(), Rejection> {
        self.shipment(&e.shipment_id)?;
        self.list("parcels", &e.parcels, LIST_LEN_MAX, true)?;
        for (i, parcel) in e.parcels.iter().enumerate() {
            self.code(&format!("parcels[{i}].sscc"), &parcel.sscc)?;
        }
        self.text("incoterm_place", &e.incoterm_place, TEXT_LEN_MAX, true)?;
        self.invoice(&e.invoice)?;
        self.list(
            "packing_list.lines",
            &e.packing_list.lines,
            LIST_LEN_MAX * 10,
            true,
        )?;
        for (i, line) in e.packing_list.lines.iter().enumerate() {
            self.code(&format!("packing_list.lines[{i}].sscc"), &line.sscc)?;
        }
        Ok(())
    }

    fn invoice(&self, inv: &CommercialInvoice) -> Result<(), Rejection> {
        self.code("invoice.number", &inv.number)?;
        self.text("invoice.seller.name", &inv.seller.name, TEXT_LEN_MAX, true)?;
        // The buyer's name, address and personal id are commitments: digests have no shape
        // to check. Its business registrations are plain text.
        for (name, tax_ids) in [
            ("seller", &inv.seller.tax_ids),
            ("buyer", &inv.buyer.tax_ids),
        ] {
            self.list(&format!("invoice.{name}.tax_ids"), tax_ids, 16, false)?;
            for (i, id) in tax_ids.iter().enumerate() {
                self.code(&format!("invoice.{name}.tax_ids[{i}].scheme"), &id.scheme)?;
                self.code(&format!("invoice.{name}.tax_ids[{i}].value"), &id.value)?;
            }
        }
        self.list("invoice.lines", &inv.lines, LIST_LEN_MAX, true)?;
        for (i, line) in inv.lines.iter().enumerate() {
            self.text(
                &format!("invoice.lines[{i}].description"),
                &line.description,
                TEXT_LEN_MAX,
                true,
            )?;
            self.code(&format!("invoice.lines[{i}].hs_code"), &line.hs_code)?;
            self.code(&format!("invoice.lines[{i}].unit"), &line.unit)?;
            if let Some(gtin) = &line.gtin {
                self.code(&format!("invoice.lines[{i}].gtin"), gtin)?;
            }
        }
        Ok(())
    }

    fn declaration(&self, e: &CustomsDeclared) -> Result<(), Rejection> {
        self.shipment(&e.shipment_id)?;
        self.code("declaration_ref", &e.declaration_ref)?;
        if let CustomsRegime::TaxCollectedAtSale { registration_id } = &e.regime {
            self.code(
                "regime.tax_collected_at_sale.registration_id",
                registration_id,
            )?;
        }
        if let Some(rate) = &e.exchange_rate {
            if rate.numerator == 0 || rate.denominator == 0 {
                return Err(self.fail(
                    "exchange_rate",
                    "numerator and denominator must be positive",
                ));
            }
        }
        self.list("lines", &e.lines, LIST_LEN_MAX, true)?;
        for (i, line) in e.lines.iter().enumerate() {
            self.code(&format!("lines[{i}].hs_code"), &line.hs_code)?;
        }
        Ok(())
    }

    fn tracking_scan(&self, e: &TrackingScanRecorded) -> Result<(), Rejection> {
        self.shipment(&e.shipment_id)?;
        self.list("parcels", &e.parcels, LIST_LEN_MAX, false)?;
        for (i, sscc) in e.parcels.iter().enumerate() {
            self.code(&format!("parcels[{i}]"), sscc)?;
        }
        self.text("biz_step", &e.biz_step, TEXT_LEN_MAX, true)?;
        self.text("disposition", &e.disposition, TEXT_LEN_MAX, true)?;
        self.code("read_point", &e.read_point)?;
        if let Some(gln) = &e.read_point_gln {
            self.code("read_point_gln", gln)?;
        }
        self.code("biz_location", &e.biz_location)?;
        self.list(
            "sensor_readings",
            &e.sensor_readings,
            SENSOR_READINGS_MAX,
            false,
        )?;
        for (i, reading) in e.sensor_readings.iter().enumerate() {
            self.sensor_reading(i, reading)?;
        }
        Ok(())
    }

    fn sensor_reading(&self, i: usize, reading: &SensorReading) -> Result<(), Rejection> {
        self.text(
            &format!("sensor_readings[{i}].kind"),
            &reading.kind,
            TEXT_LEN_MAX,
            true,
        )?;
        self.code(&format!("sensor_readings[{i}].unit"), &reading.unit)?;
        if let (Some(min), Some(max)) = (reading.min_milli, reading.max_milli) {
            if min > max {
                return Err(self.fail(
                    &format!("sensor_readings[{i}].min_milli"),
                    format!("the lower limit {min} is above the upper limit {max}"),
                ));
            }
        }
        Ok(())
    }

    fn reference_data(&self, e: &ReferenceDataPublished) -> Result<(), Rejection> {
        self.code("table_id", &e.table_id)?;
        match &e.data {
            ReferenceData::HsNomenclature(n) => {
                self.code("data.hs_nomenclature.edition", &n.edition)?;
                self.list(
                    "data.hs_nomenclature.subheadings",
                    &n.subheadings,
                    TABLE_LEN_MAX,
                    true,
                )
            }
            ReferenceData::Tariff(t) => {
                self.list("data.tariff.lines", &t.lines, TABLE_LEN_MAX, true)
            }
            ReferenceData::DeMinimis(d) => {
                self.list("data.de_minimis.rules", &d.rules, LIST_LEN_MAX, true)
            }
        }
    }

    fn membership(&self, e: &MembershipChanged) -> Result<(), Rejection> {
        self.list("approvals", &e.approvals, 64, false)?;
        match &e.change {
            MembershipChange::Admit { member } => {
                self.member("change.admit.member.id", &member.id)?;
                self.text("change.admit.member.name", &member.name, TEXT_LEN_MAX, true)?;
                self.list("change.admit.member.roles", &member.roles, 6, true)
            }
            MembershipChange::RotateKey { member, .. } => {
                self.member("change.rotate_key.member", member)
            }
            MembershipChange::Revoke { member, reason } => {
                self.member("change.revoke.member", member)?;
                self.text("change.revoke.reason", reason, TEXT_LEN_MAX, false)
            }
            // Two integers; the state machine judges them against the schedule.
            MembershipChange::ScheduleRules { .. } => Ok(()),
        }
    }
}

/// A timestamp no event may claim to be after: year 9999.
pub const TIMESTAMP_MAX: Timestamp = Timestamp(253_402_300_799_999);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TestNet, CHAIN_ID};

    fn shape_code(event: &SignedEvent) -> Result<(), (crate::reject::Code, String)> {
        check_shape(event, CHAIN_ID).map_err(|r| (r.code, r.field))
    }

    fn registration_with(change: impl Fn(&mut ShipmentRegistered)) -> SignedEvent {
        let mut payload = crate::testkit::registration("SHAPE-1", "CN", "FR");
        change(&mut payload);
        TestNet::new()
            .sign("seller-acme", EventKind::ShipmentRegistered(payload))
            .into_parts()
            .1
    }

    #[test]
    fn a_well_formed_event_passes() {
        assert_eq!(shape_code(&registration_with(|_| {})), Ok(()));
    }

    #[test]
    fn shape_faults_name_the_field() {
        let path = "event.kind.ShipmentRegistered";
        let cases: Vec<(SignedEvent, String)> = vec![
            (
                registration_with(|r| r.shipment_id = ShipmentId::new("")),
                format!("{path}.shipment_id"),
            ),
            (
                registration_with(|r| r.shipment_id = ShipmentId::new("has space")),
                format!("{path}.shipment_id"),
            ),
            (
                registration_with(|r| r.shipment_id = ShipmentId::new("x".repeat(65))),
                format!("{path}.shipment_id"),
            ),
            (
                registration_with(|r| r.parcels.clear()),
                format!("{path}.parcels"),
            ),
            (
                registration_with(|r| r.invoice.lines[1].description = "a\u{0}b".into()),
                format!("{path}.invoice.lines[1].description"),
            ),
            (
                registration_with(|r| {
                    r.invoice.lines[0].description = "x".repeat(TEXT_LEN_MAX + 1)
                }),
                format!("{path}.invoice.lines[0].description"),
            ),
            (
                registration_with(|r| r.invoice.number = "  ".into()),
                format!("{path}.invoice.number"),
            ),
            (
                registration_with(|r| r.incoterm_place.clear()),
                format!("{path}.incoterm_place"),
            ),
        ];
        for (event, field) in cases {
            assert_eq!(
                shape_code(&event),
                Err((codes::EVENT_FIELD_INVALID, field.clone())),
                "{field}"
            );
        }
        let mut late = registration_with(|_| {});
        late.event.occurred_at = Timestamp(TIMESTAMP_MAX.0 + 1);
        assert_eq!(
            shape_code(&late).map_err(|e| e.0),
            Err(codes::EVENT_FIELD_INVALID)
        );
    }

    #[test]
    fn scan_shape_faults_name_the_field() {
        let scan_with = |change: &dyn Fn(&mut TrackingScanRecorded)| {
            let mut payload = crate::testkit::tracking_scan("SHAPE-1", "DEHAM");
            change(&mut payload);
            TestNet::new()
                .sign("carrier-swift", EventKind::TrackingScanRecorded(payload))
                .into_parts()
                .1
        };
        assert_eq!(shape_code(&scan_with(&|_| {})), Ok(()));
        assert_eq!(shape_code(&scan_with(&|s| s.parcels.clear())), Ok(()));
        assert_eq!(
            shape_code(&scan_with(&|s| s.sensor_readings[0].min_milli = None)),
            Ok(())
        );
        let equal_limits = scan_with(&|s| {
            s.sensor_readings[0].min_milli = Some(4_500);
            s.sensor_readings[0].max_milli = Some(4_500);
        });
        assert_eq!(shape_code(&equal_limits), Ok(()));
        let path = "event.kind.TrackingScanRecorded";
        let reading = SensorReading {
            kind: "Temperature".into(),
            unit: "CEL".into(),
            value_milli: 0,
            min_milli: None,
            max_milli: None,
        };
        let cases: Vec<(SignedEvent, String)> = vec![
            (
                scan_with(&|s| s.shipment_id = ShipmentId::new("a b")),
                format!("{path}.shipment_id"),
            ),
            (
                scan_with(&|s| s.parcels = vec!["1".into(); LIST_LEN_MAX + 1]),
                format!("{path}.parcels"),
            ),
            (
                scan_with(&|s| s.parcels.push(" ".into())),
                format!("{path}.parcels[1]"),
            ),
            (
                scan_with(&|s| s.parcels.push("1".repeat(CODE_LEN_MAX + 1))),
                format!("{path}.parcels[1]"),
            ),
            (
                scan_with(&|s| s.biz_step.clear()),
                format!("{path}.biz_step"),
            ),
            (
                scan_with(&|s| s.disposition = "x".repeat(TEXT_LEN_MAX + 1)),
                format!("{path}.disposition"),
            ),
            (
                scan_with(&|s| s.read_point = "DE\nHAM".into()),
                format!("{path}.read_point"),
            ),
            (
                scan_with(&|s| s.read_point_gln = Some(String::new())),
                format!("{path}.read_point_gln"),
            ),
            (
                scan_with(&|s| s.biz_location.clear()),
                format!("{path}.biz_location"),
            ),
            (
                scan_with(&|s| s.sensor_readings = vec![reading.clone(); SENSOR_READINGS_MAX + 1]),
                format!("{path}.sensor_readings"),
            ),
            (
                scan_with(&|s| s.sensor_readings[0].kind.clear()),
                format!("{path}.sensor_readings[0].kind"),
            ),
            (
                scan_with(&|s| s.sensor_readings[0].unit = "\t".into()),
                format!("{path}.sensor_readings[0].unit"),
            ),
            (
                scan_with(&|s| {
                    s.sensor_readings[0].min_milli = Some(8_001);
                    s.sensor_readings[0].max_milli = Some(8_000);
                }),
                format!("{path}.sensor_readings[0].min_milli"),
            ),
        ];
        for (event, field) in cases {
            assert_eq!(
                shape_code(&event),
                Err((codes::EVENT_FIELD_INVALID, field.clone())),
                "{field}"
            );
        }
        let full = scan_with(&|s| {
            s.sensor_readings = vec![reading.clone(); SENSOR_READINGS_MAX];
            s.parcels = vec!["106141411234567897".into(); LIST_LEN_MAX];
        });
        assert_eq!(shape_code(&full), Ok(()));
    }

    #[test]
    fn an_erasure_names_a_well_formed_shipment() {
        let net = TestNet::new();
        assert_eq!(
            shape_code(&net.erase_personal("seller-acme", "SHAPE-1").into_parts().1),
            Ok(())
        );
        assert_eq!(
            shape_code(&net.erase_personal("seller-acme", "a b").into_parts().1),
            Err((
                codes::EVENT_FIELD_INVALID,
                "event.kind.PersonalDataErased.shipment_id".into()
            ))
        );
    }

    #[test]
    fn another_chains_event_is_refused() {
        let event = registration_with(|_| {});
        assert_eq!(
            check_shape(&event, "another-chain").map_err(|r| r.code),
            Err(codes::EVENT_WRONG_CHAIN)
        );
    }

    #[test]
    fn undecodable_bytes_are_malformed() {
        let bytes = EncodedEvent::new(registration_with(|_| {})).into_parts().0;
        assert_eq!(
            EncodedEvent::decode_untrusted(&bytes[..bytes.len() - 1]).map_err(|r| r.code),
            Err(codes::EVENT_MALFORMED)
        );
        assert!(EncodedEvent::decode_untrusted(&bytes).is_ok());
    }
}
