//! The custody state machine.
//!
//! [`apply`] is a pure function of the state, one event and the block context: it either
//! changes the state or rejects the event with a stable code, and on rejection it changes
//! nothing. It reads no clock and draws no randomness, and every collection it iterates is
//! ordered, so every validator reaches the same verdict and the same state.
//!
//! It owns custody continuity, the shipment lifecycle of DESIGN.md and who may sign what:
//!
//! ```text
//! registered → in_transit ⇄ (handoffs) → at_customs → held | released
//!            → out_for_delivery → delivered → return_requested → returned
//! ```
//!
//! Document, tariff and duty arithmetic are rule modules in `custody-contracts`, which run
//! before this on the same event.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::event::{membership_approval_message, EncodedEvent};
use crate::genesis::{rules_version_at, Genesis, RULES_SCHEDULE_LEN_MAX};
use crate::hash::{domain, Digest};
use crate::keys::PublicKey;
use crate::model::*;
use crate::reject::{codes, Code, Rejection};
use crate::time::Timestamp;

/// Where a shipment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Registered by the seller, still in the seller's hands.
    Registered,
    /// With a carrier or broker.
    InTransit,
    /// Declared to customs, no decision yet.
    AtCustoms,
    /// Customs holds it (hold or inspection).
    Held,
    /// Released in the destination country.
    Released,
    /// Handed on for the last mile after release.
    OutForDelivery,
    /// Delivered to the buyer.
    Delivered,
    /// The seller authorised a return that has not all come back.
    ReturnRequested,
    /// Every authorised return came back.
    Returned,
}

impl ShipmentStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Registered => "registered",
            ShipmentStatus::InTransit => "in_transit",
            ShipmentStatus::AtCustoms => "at_customs",
            ShipmentStatus::Held => "held",
            ShipmentStatus::Released => "released",
            ShipmentStatus::OutForDelivery => "out_for_delivery",
            ShipmentStatus::Delivered => "delivered",
            ShipmentStatus::ReturnRequested => "return_requested",
            ShipmentStatus::Returned => "returned",
        }
    }
}

/// A handoff proposed and not yet accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingHandoff {
    /// The `HandoffProposed` event.
    pub proposal: EventId,
    /// The custodian that proposed it.
    pub from: MemberId,
    /// The proposed receiver.
    pub to: MemberId,
    /// Where.
    pub place: String,
}

/// The shipment's current customs declaration and what has been paid against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclarationState {
    /// The `CustomsDeclared` event.
    pub event: EventId,
    /// Where it was declared.
    pub jurisdiction: CountryCode,
    /// Currency of the amounts.
    pub currency: CurrencyCode,
    /// Duty plus tax assessed, minor units.
    pub due_minor: u64,
    /// Paid so far, minor units.
    pub paid_minor: u64,
    /// The latest decision, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub outcome: Option<ClearanceOutcome>,
}

/// An authorised return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnState {
    /// The RMA.
    pub rma: String,
    /// Lines authorised.
    pub lines: Vec<LineQuantity>,
    /// Whether the goods came back.
    pub received: bool,
}

/// Everything the ledger knows about a shipment now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShipmentState {
    /// The id.
    pub shipment_id: ShipmentId,
    /// Lifecycle status.
    pub status: ShipmentStatus,
    /// The seller that registered it.
    pub seller: MemberId,
    /// Who holds it now.
    pub custodian: MemberId,
    /// Country of dispatch.
    pub origin: CountryCode,
    /// Country of destination.
    pub destination: CountryCode,
    /// Incoterm of the sale.
    pub incoterm: Incoterm,
    /// The registration event.
    pub registered_event: EventId,
    /// Block time of registration.
    pub registered_at: Timestamp,
    /// Block time of the latest event.
    pub updated_at: Timestamp,
    /// UN/LOCODE of the latest handoff or delivery.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_place: Option<String>,
    /// A proposed handoff awaiting acceptance.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub pending_handoff: Option<PendingHandoff>,
    /// The current customs declaration.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub declaration: Option<DeclarationState>,
    /// Countries in which customs released it, in order.
    pub released_in: Vec<CountryCode>,
    /// The commercial invoice as registered: the goods, their values and the parties. Rule
    /// modules value, classify and tax the shipment from it.
    pub invoice: CommercialInvoice,
    /// Whether custody was handed over at a place in the destination country (the goods
    /// arrived there), which customs release requires.
    pub arrived_in_destination: bool,
    /// Authorised returns.
    pub returns: Vec<ReturnState>,
    /// Number of events about the shipment.
    pub event_count: u64,
    /// The latest of them.
    pub last_event: EventId,
    /// Whether a `PersonalDataErased` event recorded that the personal data behind the
    /// shipment's commitments was erased off the ledger.
    pub personal_erased: bool,
    /// Entry hash of the latest event's log entry (`entry::LogEntry`): the head of the
    /// shipment's hash chain, and its value in the header's shipment map. Set when the block
    /// that holds the event is finished, so `None` only while registration is in flight.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub head_entry: Option<Digest>,
}

impl ShipmentState {
    /// Records that an event about the shipment was applied.
    fn record(&mut self, event: EventId, ctx: BlockContext) {
        self.event_count += 1;
        self.last_event = event;
        self.updated_at = ctx.time;
    }

    /// Asserts the shipment's invariants. A shipment that breaks one is a bug in the state
    /// machine (or a corrupted store): the node must stop rather than build on it.
    pub fn check(&self) {
        if let Some(broken) = self.broken_invariant() {
            panic!("shipment {}: {broken}", self.shipment_id);
        }
    }

    /// The first invariant the shipment breaks, if any.
    ///
    /// Not among them: paid ≤ due for the current declaration. `DutyPaid` never pays more
    /// than is due, but a held shipment declared again in the same currency keeps what was
    /// paid, and nothing bounds the new assessment below it; `duty_paid` asserts the bound
    /// where it holds.
    pub fn broken_invariant(&self) -> Option<&'static str> {
        self.broken_custody()
            .or_else(|| self.broken_declaration())
            .or_else(|| self.broken_returns())
            .or_else(|| self.broken_history())
    }

    /// Custody has exactly one holder: the custodian. A handoff in flight is proposed by
    /// it to someone else, and none is in flight once the goods are delivered.
    fn broken_custody(&self) -> Option<&'static str> {
        use ShipmentStatus as S;
        if self.status == S::Registered && self.custodian != self.seller {
            return Some("a shipment still registered is held by someone other than its seller");
        }
        match &self.pending_handoff {
            Some(p) if p.from != self.custodian => {
                Some("a pending handoff was proposed by someone other than the custodian")
            }
            Some(p) if p.to == self.custodian => {
                Some("a pending handoff names the custodian as receiver")
            }
            Some(_) if matches!(self.status, S::Delivered | S::ReturnRequested | S::Returned) => {
                Some("a delivered shipment has a pending handoff")
            }
            _ => None,
        }
    }

    /// A shipment at customs has a declaration awaiting a decision, a held one a declaration
    /// customs held, a released one a declaration released in its destination.
    fn broken_declaration(&self) -> Option<&'static str> {
        use ShipmentStatus as S;
        let outcome = self.declaration.as_ref().map(|d| d.outcome);
        match self.status {
            S::AtCustoms if outcome != Some(None) => {
                Some("a shipment at customs has no declaration awaiting a decision")
            }
            S::Held
                if !matches!(
                    outcome,
                    Some(Some(ClearanceOutcome::Hold | ClearanceOutcome::Inspection))
                ) =>
            {
                Some("a held shipment has no declaration customs held")
            }
            S::Released if self.released_in.last() != Some(&self.destination) => {
                Some("a released shipment was not last released in its destination")
            }
            _ => None,
        }
    }

    /// Returns come back only after delivery, and the returns of an invoice line never add
    /// up to more than it shipped.
    fn broken_returns(&self) -> Option<&'static str> {
        use ShipmentStatus as S;
        let open = self.returns.iter().any(|r| !r.received);
        match self.status {
            S::ReturnRequested if !open => {
                return Some("a shipment awaiting a return has no open return request")
            }
            S::Returned if self.returns.is_empty() || open => {
                return Some("a returned shipment has no returns, or one still open")
            }
            S::ReturnRequested | S::Returned => {}
            _ if !self.returns.is_empty() => {
                return Some("a shipment has returns but is not in the return leg")
            }
            _ => {}
        }
        let mut returned: BTreeMap<u32, u64> = BTreeMap::new();
        for line in self.returns.iter().flat_map(|r| &r.lines) {
            let total = returned.entry(line.invoice_line).or_default();
            *total = total.saturating_add(line.quantity);
            if invoiced_quantity(self, line.invoice_line).is_none_or(|shipped| *total > shipped) {
                return Some("the returns of an invoice line exceed what it shipped");
            }
        }
        None
    }

    /// Every applied event is counted, and time does not run backwards.
    fn broken_history(&self) -> Option<&'static str> {
        if self.event_count == 0 {
            return Some("a shipment records no event");
        }
        if self.updated_at < self.registered_at {
            return Some("the latest event is before the registration");
        }
        None
    }
}

/// Whether a member may still sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// May sign.
    Active,
    /// Revoked; signs nothing more.
    Revoked,
}

/// A member as the ledger knows it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRecord {
    /// Stable id.
    pub id: MemberId,
    /// Organisation name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// The current signing key.
    pub key: PublicKey,
    /// Keys rotated out, oldest first. Their past signatures stay valid.
    pub retired_keys: Vec<PublicKey>,
    /// Active or revoked.
    pub status: MemberStatus,
}

impl MemberRecord {
    /// Whether the member holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The context an event is applied in: its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// Height of the block.
    pub height: u64,
    /// Block time; this is `recorded_at` for the event.
    pub time: Timestamp,
}

/// Everything changed by a run of events, in key order: what a store writes, and what the
/// state root commits to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDelta {
    /// Shipments written.
    pub shipments: Vec<ShipmentState>,
    /// Members written.
    pub members: Vec<MemberRecord>,
    /// Key → member mappings added.
    pub keys: Vec<(PublicKey, MemberId)>,
    /// Reference tables published: (table id, effective from) → event.
    pub reference: Vec<((String, Timestamp), EventId)>,
    /// Rules activations scheduled (by `ScheduleRules` changes), by height.
    pub rules_schedule: Vec<RulesActivation>,
}

/// The next link of the state digest chain.
///
/// `state_root(h) = SHA-256("custody/state/v1" || state_root(h-1) || canonical(delta(h)))`,
/// with `state_root(0)` the genesis hash. Two validators that applied the same block to the
/// same state get the same delta and so the same root; any divergence shows at once.
pub fn state_root(previous: &Digest, delta: &StateDelta) -> Digest {
    Digest::of(domain::STATE, &[previous.as_bytes(), &codec::encode(delta)])
}

/// The state the state machine works on.
///
/// A node does not hold every shipment in memory: before a block it loads the members, the
/// shipments and reference entries the block's events name, and which of its event ids are
/// already committed (see `Store::load_state`). Verification replays into one that holds
/// everything. Either way [`apply`] sees all it needs.
///
/// Besides the records of the state root, it holds the SSCCs each shipment was registered
/// with, which tracking scans are checked against. They are not part of any delta: they are
/// the `parcels` of the shipment's `ShipmentRegistered` event (named by its
/// `registered_event`), so the log already commits to them and the loader reads them from
/// there.
#[derive(Debug, Clone)]
pub struct State {
    chain_id: String,
    admin_quorum: u32,
    rules_schedule: Vec<RulesActivation>,
    new_activations: Vec<RulesActivation>,
    members: BTreeMap<MemberId, MemberRecord>,
    keys: BTreeMap<PublicKey, MemberId>,
    shipments: BTreeMap<ShipmentId, ShipmentState>,
    parcels: BTreeMap<ShipmentId, BTreeSet<String>>,
    reference: BTreeMap<(String, Timestamp), EventId>,
    committed: BTreeSet<EventId>,
    dirty_shipments: BTreeSet<ShipmentId>,
    dirty_members: BTreeSet<MemberId>,
    new_keys: BTreeSet<PublicKey>,
    new_reference: BTreeSet<(String, Timestamp)>,
}

impl State {
    /// An empty state for a chain, with no members.
    pub fn new(chain_id: impl Into<String>, admin_quorum: u32) -> State {
        State {
            chain_id: chain_id.into(),
            admin_quorum,
            rules_schedule: Vec::new(),
            new_activations: Vec::new(),
            members: BTreeMap::new(),
            keys: BTreeMap::new(),
            shipments: BTreeMap::new(),
            parcels: BTreeMap::new(),
            reference: BTreeMap::new(),
            committed: BTreeSet::new(),
            dirty_shipments: BTreeSet::new(),
            dirty_members: BTreeSet::new(),
            new_keys: BTreeSet::new(),
            new_reference: BTreeSet::new(),
        }
    }

    /// The state before block 1: the genesis members. It is "clean": the genesis members
    /// are not part of any block's delta.
    pub fn from_genesis(genesis: &Genesis) -> State {
        let mut state = State::new(genesis.chain_id.clone(), genesis.admin_quorum);
        state.rules_schedule = genesis.rules_schedule.clone();
        for m in &genesis.members {
            state.insert_member(MemberRecord {
                id: m.id.clone(),
                name: m.name.clone(),
                roles: m.roles.clone(),
                key: m.key,
                retired_keys: Vec::new(),
                status: MemberStatus::Active,
            });
        }
        state
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Loads a member record (and its keys) without marking it changed.
    pub fn insert_member(&mut self, record: MemberRecord) {
        for key in record
            .retired_keys
            .iter()
            .chain(std::iter::once(&record.key))
        {
            self.keys.insert(*key, record.id.clone());
        }
        self.members.insert(record.id.clone(), record);
    }

    /// Loads a shipment without marking it changed.
    pub fn insert_shipment(&mut self, shipment: ShipmentState) {
        self.shipments
            .insert(shipment.shipment_id.clone(), shipment);
    }

    /// Loads the SSCCs a shipment was registered with (the `parcels` of its
    /// `ShipmentRegistered` event), which tracking scans are checked against. They are never
    /// part of a delta.
    pub fn insert_parcels(&mut self, id: ShipmentId, ssccs: impl IntoIterator<Item = String>) {
        self.parcels.insert(id, ssccs.into_iter().collect());
    }

    /// The SSCCs a shipment was registered with, if they are loaded.
    pub fn parcels(&self, id: &ShipmentId) -> Option<&BTreeSet<String>> {
        self.parcels.get(id)
    }

    /// Loads a reference entry without marking it changed.
    pub fn insert_reference(
        &mut self,
        table_id: String,
        effective_from: Timestamp,
        event: EventId,
    ) {
        self.reference.insert((table_id, effective_from), event);
    }

    /// Loads a scheduled rules activation (one a `ScheduleRules` change committed) without
    /// marking it changed. Activations are kept by height.
    pub fn insert_rules_activation(&mut self, activation: RulesActivation) {
        if let Err(at) = self
            .rules_schedule
            .binary_search_by_key(&activation.from_height, |a| a.from_height)
        {
            self.rules_schedule.insert(at, activation);
        }
    }

    /// The rules schedule: genesis's entries, then those admins scheduled, by height.
    pub fn rules_schedule(&self) -> &[RulesActivation] {
        &self.rules_schedule
    }

    /// The rules version in force at a height. Rule modules judge every event of a block by
    /// the version of its height, on the validators and on every later replay alike.
    pub fn rules_version_at(&self, height: u64) -> u32 {
        rules_version_at(&self.rules_schedule, height)
    }

    /// Records that an event id is already on the ledger.
    pub fn insert_committed(&mut self, id: EventId) {
        self.committed.insert(id);
    }

    /// A shipment.
    pub fn shipment(&self, id: &ShipmentId) -> Option<&ShipmentState> {
        self.shipments.get(id)
    }

    /// A member.
    pub fn member(&self, id: &MemberId) -> Option<&MemberRecord> {
        self.members.get(id)
    }

    /// All members, by id.
    pub fn members(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.values()
    }

    /// The member a key belongs (or belonged) to.
    pub fn member_by_key(&self, key: &PublicKey) -> Option<&MemberRecord> {
        self.keys.get(key).and_then(|id| self.members.get(id))
    }

    /// Whether an event id is committed or applied.
    pub fn is_committed(&self, id: &EventId) -> bool {
        self.committed.contains(id)
    }

    /// The reference entry in force for a table at a time: the latest `effective_from` not
    /// after `at`.
    pub fn reference_in_force(
        &self,
        table_id: &str,
        at: Timestamp,
    ) -> Option<(Timestamp, EventId)> {
        self.reference
            .range((table_id.to_owned(), Timestamp(0))..=(table_id.to_owned(), at))
            .next_back()
            .map(|((_, from), id)| (*from, *id))
    }

    /// Records the head entries of the shipments a block's events moved (see
    /// `entry::new_heads`). Each of them was written by the block, so it is in the delta.
    pub fn set_head_entries(&mut self, heads: &BTreeMap<ShipmentId, Digest>) {
        for (id, head) in heads {
            assert!(
                self.dirty_shipments.contains(id),
                "a shipment gets a new head only from an event the block applied"
            );
            let shipment = self
                .shipments
                .get_mut(id)
                .expect("a dirty shipment is loaded");
            shipment.head_entry = Some(*head);
        }
    }

    /// Takes the changes made since the last call, in key order.
    pub fn take_delta(&mut self) -> StateDelta {
        let shipments = std::mem::take(&mut self.dirty_shipments)
            .into_iter()
            .map(|id| self.shipments[&id].clone())
            .collect();
        let members = std::mem::take(&mut self.dirty_members)
            .into_iter()
            .map(|id| self.members[&id].clone())
            .collect();
        let keys = std::mem::take(&mut self.new_keys)
            .into_iter()
            .map(|key| (key, self.keys[&key].clone()))
            .collect();
        let reference = std::mem::take(&mut self.new_reference)
            .into_iter()
            .map(|k| {
                let id = self.reference[&k];
                (k, id)
            })
            .collect();
        StateDelta {
            shipments,
            members,
            keys,
            reference,
            rules_schedule: std::mem::take(&mut self.new_activations),
        }
    }

    fn put_shipment(&mut self, shipment: ShipmentState) {
        self.dirty_shipments.insert(shipment.shipment_id.clone());
        self.shipments
            .insert(shipment.shipment_id.clone(), shipment);
    }

    fn put_member(&mut self, record: MemberRecord) {
        for key in record
            .retired_keys
            .iter()
            .chain(std::iter::once(&record.key))
        {
            if self.keys.insert(*key, record.id.clone()).is_none() {
                self.new_keys.insert(*key);
            }
        }
        self.dirty_members.insert(record.id.clone());
        self.members.insert(record.id.clone(), record);
    }
}

fn reject(code: Code, field: impl Into<String>, message: impl Into<String>) -> Rejection {
    Rejection::new(code, field, message)
}

/// The active member that signed with `key`, or why there is none.
pub fn signer_of<'s>(state: &'s State, key: &PublicKey) -> Result<&'s MemberRecord, Rejection> {
    let member = state.member_by_key(key).ok_or_else(|| {
        reject(
            codes::MEMBER_UNKNOWN_SIGNER,
            "signer",
            format!("key {key} belongs to no member"),
        )
    })?;
    if member.status == MemberStatus::Revoked {
        return Err(reject(
            codes::MEMBER_REVOKED,
            "signer",
            format!("member {} is revoked", member.id),
        ));
    }
    if member.key != *key {
        return Err(reject(
            codes::MEMBER_KEY_ROTATED,
            "signer",
            format!("key {key} of member {} was rotated out", member.id),
        ));
    }
    Ok(member)
}

fn require_role(member: &MemberRecord, role: Role, field: &str) -> Result<(), Rejection> {
    if member.has_role(role) {
        Ok(())
    } else {
        Err(reject(
            codes::MEMBER_MISSING_ROLE,
            field,
            format!("member {} lacks the {role:?} role", member.id),
        ))
    }
}

fn wrong_state(kind: &str, shipment: &ShipmentState) -> Rejection {
    reject(
        codes::SHIPMENT_WRONG_STATE,
        "event.kind",
        format!(
            "{kind} is not allowed while shipment {} is {}",
            shipment.shipment_id,
            shipment.status.as_str()
        ),
    )
}

/// Applies one event. On `Err` the state is unchanged.
///
/// The signature is not checked here (blocks verify signatures in a batch first); shape
/// checks (`event::check_shape`) are assumed to have passed.
pub fn apply(state: &mut State, event: &EncodedEvent, ctx: BlockContext) -> Result<(), Rejection> {
    if state.is_committed(&event.id()) {
        return Err(reject(
            codes::EVENT_DUPLICATE,
            "event",
            format!("event {} is already on the ledger", event.id()),
        ));
    }
    let kind = &event.event().event.kind;
    let path = format!("event.kind.{}", kind.name());
    match kind {
        EventKind::ReferenceDataPublished(e) => publish_reference(state, event, e, &path)?,
        EventKind::MembershipChanged(e) => {
            let signer = signer_of(state, &event.event().signer)?;
            match membership(state, signer, e, ctx, &path)? {
                Admitted::Member(record) => state.put_member(record),
                Admitted::Rules(activation) => {
                    state.rules_schedule.push(activation);
                    state.new_activations.push(activation);
                }
            }
        }
        EventKind::ShipmentRegistered(e) => register(state, event, e, ctx, &path)?,
        _ => apply_to_shipment(state, event, ctx, &path)?,
    }
    state.committed.insert(event.id());
    Ok(())
}

fn publish_reference(
    state: &mut State,
    event: &EncodedEvent,
    e: &ReferenceDataPublished,
    path: &str,
) -> Result<(), Rejection> {
    require_role(
        signer_of(state, &event.event().signer)?,
        Role::CustomsAuthority,
        "signer",
    )?;
    let key = (e.table_id.clone(), e.effective_from);
    if state.reference.contains_key(&key) {
        return Err(reject(
            codes::REFERENCE_DUPLICATE,
            format!("{path}.effective_from"),
            format!(
                "table {} already has a version effective from {}",
                e.table_id, e.effective_from
            ),
        ));
    }
    state.reference.insert(key.clone(), event.id());
    state.new_reference.insert(key);
    Ok(())
}

/// A shipment's first event: the shipment as registered.
fn register(
    state: &mut State,
    event: &EncodedEvent,
    e: &ShipmentRegistered,
    ctx: BlockContext,
    path: &str,
) -> Result<(), Rejection> {
    let signer = signer_of(state, &event.event().signer)?;
    require_role(signer, Role::Seller, "signer")?;
    if state.shipment(&e.shipment_id).is_some() {
        return Err(reject(
            codes::SHIPMENT_EXISTS,
            format!("{path}.shipment_id"),
            format!("shipment {} is already registered", e.shipment_id),
        ));
    }
    let mut shipment = ShipmentState {
        shipment_id: e.shipment_id.clone(),
        status: ShipmentStatus::Registered,
        seller: signer.id.clone(),
        custodian: signer.id.clone(),
        origin: e.origin,
        destination: e.destination,
        incoterm: e.incoterm,
        registered_event: event.id(),
        registered_at: ctx.time,
        updated_at: ctx.time,
        last_place: None,
        pending_handoff: None,
        declaration: None,
        released_in: Vec::new(),
        invoice: e.invoice.clone(),
        arrived_in_destination: false,
        returns: Vec::new(),
        event_count: 0,
        last_event: event.id(),
        personal_erased: false,
        head_entry: None,
    };
    shipment.record(event.id(), ctx);
    shipment.check();
    state.insert_parcels(
        e.shipment_id.clone(),
        e.parcels.iter().map(|p| p.sscc.clone()),
    );
    state.put_shipment(shipment);
    Ok(())
}

/// Applies an event about a registered shipment.
///
/// The shipment is taken out of the state and put back rather than cloned: the steps change
/// it in place, and each step makes every check before it changes anything, so a rejected
/// event puts it back as it was.
fn apply_to_shipment(
    state: &mut State,
    event: &EncodedEvent,
    ctx: BlockContext,
    path: &str,
) -> Result<(), Rejection> {
    // The signer is judged before the shipment is looked up, as rejections report them.
    signer_of(state, &event.event().signer)?;
    let kind = &event.event().event.kind;
    let id = kind
        .shipment_id()
        .expect("every kind but registration, reference data and membership names a shipment");
    let mut shipment = state.shipments.remove(id).ok_or_else(|| {
        reject(
            codes::SHIPMENT_UNKNOWN,
            format!("{path}.shipment_id"),
            format!("no shipment {id} is registered"),
        )
    })?;
    shipment.check();
    let step = Step {
        state,
        signer: signer_of(state, &event.event().signer).expect("the signer was judged above"),
        event: event.id(),
        name: kind.name(),
        path,
    };
    match transition(&step, &mut shipment, kind) {
        Ok(()) => {
            shipment.record(event.id(), ctx);
            shipment.check();
            state.put_shipment(shipment);
            Ok(())
        }
        Err(rejection) => {
            shipment.check();
            state.insert_shipment(shipment);
            Err(rejection)
        }
    }
}

/// What a shipment step reads besides the shipment and the event's payload.
struct Step<'a> {
    state: &'a State,
    signer: &'a MemberRecord,
    /// The event's id.
    event: EventId,
    /// The event kind's name, for rejections.
    name: &'static str,
    /// `event.kind.<name>`, for the fields rejections name.
    path: &'a str,
}

impl Step<'_> {
    fn wrong_state(&self, s: &ShipmentState) -> Rejection {
        wrong_state(self.name, s)
    }

    fn not_custodian(&self, s: &ShipmentState) -> Option<Rejection> {
        (self.signer.id != s.custodian).then(|| not_custodian(self.signer, s))
    }
}

/// The custody transition for an event about a registered shipment: one step per kind.
/// A step checks everything before it changes the shipment, so on `Err` it is unchanged.
fn transition(st: &Step, s: &mut ShipmentState, kind: &EventKind) -> Result<(), Rejection> {
    match kind {
        EventKind::HandoffProposed(e) => handoff_proposed(st, s, e),
        EventKind::HandoffAccepted(e) => handoff_accepted(st, s, e),
        EventKind::CustomsDeclared(e) => customs_declared(st, s, e),
        EventKind::DutyPaid(e) => duty_paid(st, s, e),
        EventKind::CustomsCleared(e) => customs_cleared(st, s, e),
        EventKind::Delivered(e) => delivered(st, s, e),
        EventKind::ReturnRequested(e) => return_requested(st, s, e),
        EventKind::ReturnReceived(e) => return_received(st, s, e),
        EventKind::DocumentAttested(_) => Ok(()),
        EventKind::TrackingScanRecorded(e) => tracking_scan(st, s, e),
        EventKind::PersonalDataErased(_) => personal_data_erased(st, s),
        EventKind::ShipmentRegistered(_)
        | EventKind::ReferenceDataPublished(_)
        | EventKind::MembershipChanged(_) => unreachable!("handled by apply"),
    }
}

fn handoff_proposed(
    st: &Step,
    s: &mut ShipmentState,
    e: &HandoffProposed,
) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    if let Some(rejection) = st.not_custodian(s) {
        return Err(rejection);
    }
    match s.status {
        S::Registered | S::InTransit | S::AtCustoms | S::Released | S::OutForDelivery => {}
        S::Held => return Err(held(s)),
        _ => return Err(st.wrong_state(s)),
    }
    if e.to == s.custodian {
        return Err(reject(
            codes::CUSTODY_SELF_HANDOFF,
            format!("{}.to", st.path),
            format!("{} already holds shipment {}", e.to, s.shipment_id),
        ));
    }
    let receiver = st
        .state
        .member(&e.to)
        .filter(|m| m.status == MemberStatus::Active)
        .ok_or_else(|| {
            reject(
                codes::CUSTODY_RECEIVER_NOT_MEMBER,
                format!("{}.to", st.path),
                format!("{} is not an active member", e.to),
            )
        })?;
    if ![Role::Carrier, Role::CustomsBroker, Role::Seller]
        .iter()
        .any(|r| receiver.has_role(*r))
    {
        return Err(reject(
            codes::MEMBER_MISSING_ROLE,
            format!("{}.to", st.path),
            format!("{} holds no role that can take custody", e.to),
        ));
    }
    s.pending_handoff = Some(PendingHandoff {
        proposal: st.event,
        from: st.signer.id.clone(),
        to: e.to.clone(),
        place: e.place.clone(),
    });
    Ok(())
}

fn handoff_accepted(
    st: &Step,
    s: &mut ShipmentState,
    e: &HandoffAccepted,
) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    if s.status == S::Held {
        return Err(held(s));
    }
    let pending = s
        .pending_handoff
        .as_ref()
        .filter(|p| p.proposal == e.proposal)
        .ok_or_else(|| {
            reject(
                codes::CUSTODY_NO_PENDING_HANDOFF,
                format!("{}.proposal", st.path),
                format!(
                    "proposal {} is not the pending handoff of shipment {}",
                    e.proposal, s.shipment_id
                ),
            )
        })?;
    if st.signer.id != pending.to {
        return Err(reject(
            codes::CUSTODY_NOT_RECEIVER,
            "signer",
            format!(
                "the handoff names {} as receiver, not {}",
                pending.to, st.signer.id
            ),
        ));
    }
    let pending = s
        .pending_handoff
        .take()
        .expect("the pending handoff was found above");
    assert_eq!(
        pending.from, s.custodian,
        "the custodian proposed the handoff"
    );
    s.custodian = pending.to;
    if place_country(&pending.place) == Some(s.destination.as_str()) {
        s.arrived_in_destination = true;
    }
    s.last_place = Some(pending.place);
    s.status = match s.status {
        S::Registered => S::InTransit,
        S::Released => S::OutForDelivery,
        other => other,
    };
    Ok(())
}

fn customs_declared(
    st: &Step,
    s: &mut ShipmentState,
    e: &CustomsDeclared,
) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    require_role(st.signer, Role::CustomsBroker, "signer")?;
    if !matches!(s.status, S::InTransit | S::Held) {
        return Err(st.wrong_state(s));
    }
    // Payments already made for the shipment in the same currency still count when a held
    // shipment is declared again.
    let paid_minor = s
        .declaration
        .as_ref()
        .filter(|d| d.currency == e.currency && d.jurisdiction == e.jurisdiction)
        .map_or(0, |d| d.paid_minor);
    let due_minor = e
        .duty_total_minor
        .checked_add(e.tax_total_minor)
        .ok_or_else(|| {
            reject(
                codes::EVENT_FIELD_INVALID,
                format!("{}.tax_total_minor", st.path),
                "duty plus tax overflows",
            )
        })?;
    s.declaration = Some(DeclarationState {
        event: st.event,
        jurisdiction: e.jurisdiction,
        currency: e.currency,
        due_minor,
        paid_minor,
        outcome: None,
    });
    s.status = S::AtCustoms;
    Ok(())
}

fn duty_paid(st: &Step, s: &mut ShipmentState, e: &DutyPaid) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    if !matches!(s.status, S::AtCustoms | S::Held) {
        return Err(st.wrong_state(s));
    }
    let declaration = current_declaration(s, &e.declaration, st.path)?;
    if e.amount.currency != declaration.currency {
        return Err(reject(
            codes::DUTY_CURRENCY_MISMATCH,
            format!("{}.amount.currency", st.path),
            format!(
                "payment is in {}, the declaration in {}",
                e.amount.currency, declaration.currency
            ),
        ));
    }
    let paid = declaration.paid_minor.saturating_add(e.amount.amount_minor);
    if paid > declaration.due_minor {
        return Err(reject(
            codes::DUTY_OVERPAID,
            format!("{}.amount.amount_minor", st.path),
            format!(
                "payments would total {paid}, more than the {} assessed",
                declaration.due_minor
            ),
        ));
    }
    assert!(paid > declaration.paid_minor, "a payment is positive");
    declaration.paid_minor = paid;
    assert!(declaration.paid_minor <= declaration.due_minor);
    Ok(())
}

fn customs_cleared(st: &Step, s: &mut ShipmentState, e: &CustomsCleared) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    require_role(st.signer, Role::CustomsBroker, "signer")?;
    if !matches!(s.status, S::AtCustoms | S::Held) {
        return Err(st.wrong_state(s));
    }
    let destination = s.destination;
    let declaration = current_declaration(s, &e.declaration, st.path)?;
    let jurisdiction = declaration.jurisdiction;
    if e.outcome == ClearanceOutcome::Release && declaration.paid_minor < declaration.due_minor {
        return Err(reject(
            codes::CUSTOMS_UNPAID,
            format!("{}.outcome", st.path),
            format!(
                "release needs {} paid; {} is",
                declaration.due_minor, declaration.paid_minor
            ),
        ));
    }
    declaration.outcome = Some(e.outcome);
    s.status = match e.outcome {
        ClearanceOutcome::Release if jurisdiction == destination => S::Released,
        ClearanceOutcome::Release => S::InTransit,
        ClearanceOutcome::Hold | ClearanceOutcome::Inspection => S::Held,
    };
    if e.outcome == ClearanceOutcome::Release {
        s.released_in.push(jurisdiction);
    }
    Ok(())
}

fn delivered(st: &Step, s: &mut ShipmentState, e: &Delivered) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    require_role(st.signer, Role::Carrier, "signer")?;
    if let Some(rejection) = st.not_custodian(s) {
        return Err(rejection);
    }
    let domestic = s.origin == s.destination;
    match s.status {
        S::Released | S::OutForDelivery => {}
        S::InTransit if domestic => {}
        S::Registered | S::InTransit | S::AtCustoms | S::Held => {
            return Err(reject(
                codes::DELIVERY_NOT_RELEASED,
                "event.kind",
                format!(
                    "shipment {} is {} and not released in {}",
                    s.shipment_id,
                    s.status.as_str(),
                    s.destination
                ),
            ))
        }
        _ => return Err(st.wrong_state(s)),
    }
    s.status = S::Delivered;
    s.pending_handoff = None;
    s.last_place = Some(e.place.clone());
    Ok(())
}

fn return_requested(
    st: &Step,
    s: &mut ShipmentState,
    e: &ReturnRequested,
) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    if st.signer.id != s.seller {
        return Err(reject(
            codes::RETURN_NOT_SELLER,
            "signer",
            format!("only the seller {} authorises returns", s.seller),
        ));
    }
    if !matches!(s.status, S::Delivered | S::ReturnRequested | S::Returned) {
        return Err(st.wrong_state(s));
    }
    if s.returns.iter().any(|r| r.rma == e.rma) {
        return Err(reject(
            codes::RETURN_BAD_RMA,
            format!("{}.rma", st.path),
            format!("RMA {} is already used for this shipment", e.rma),
        ));
    }
    for (i, line) in e.lines.iter().enumerate() {
        returnable(st, s, &e.lines[..i], line, i)?;
    }
    s.returns.push(ReturnState {
        rma: e.rma.clone(),
        lines: e.lines.clone(),
        received: false,
    });
    s.status = S::ReturnRequested;
    Ok(())
}

/// Checks that line `i` of a return request, after the request's `earlier` lines, asks for
/// no more than is left of the invoice line once earlier returns are counted.
fn returnable(
    st: &Step,
    s: &ShipmentState,
    earlier: &[LineQuantity],
    line: &LineQuantity,
    i: usize,
) -> Result<(), Rejection> {
    let shipped = invoiced_quantity(s, line.invoice_line).ok_or_else(|| {
        reject(
            codes::RETURN_BAD_LINES,
            format!("{}.lines[{i}].invoice_line", st.path),
            format!("the invoice has no line {}", line.invoice_line),
        )
    })?;
    let already: u64 = s
        .returns
        .iter()
        .flat_map(|r| &r.lines)
        .chain(earlier)
        .filter(|l| l.invoice_line == line.invoice_line)
        .map(|l| l.quantity)
        .sum();
    if line.quantity == 0 || line.quantity > shipped.saturating_sub(already) {
        return Err(reject(
            codes::RETURN_BAD_LINES,
            format!("{}.lines[{i}].quantity", st.path),
            format!(
                "line {} shipped {shipped}, {already} already returned; {} requested",
                line.invoice_line, line.quantity
            ),
        ));
    }
    Ok(())
}

/// The quantity an invoice line shipped, if the invoice has that line.
fn invoiced_quantity(s: &ShipmentState, line_no: u32) -> Option<u64> {
    s.invoice
        .lines
        .iter()
        .find(|l| l.line_no == line_no)
        .map(|l| l.quantity)
}

fn return_received(st: &Step, s: &mut ShipmentState, e: &ReturnReceived) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    if st.signer.id != s.seller {
        return Err(reject(
            codes::RETURN_NOT_SELLER,
            "signer",
            format!("only the seller {} receives returns", s.seller),
        ));
    }
    if s.status != S::ReturnRequested {
        return Err(st.wrong_state(s));
    }
    let request = s
        .returns
        .iter_mut()
        .find(|r| r.rma == e.rma && !r.received)
        .ok_or_else(|| {
            reject(
                codes::RETURN_BAD_RMA,
                format!("{}.rma", st.path),
                format!("no open return request with RMA {}", e.rma),
            )
        })?;
    for (i, line) in e.lines.iter().enumerate() {
        let authorised: u64 = request
            .lines
            .iter()
            .filter(|l| l.invoice_line == line.invoice_line)
            .map(|l| l.quantity)
            .sum();
        let received: u64 = e.lines[..=i]
            .iter()
            .filter(|l| l.invoice_line == line.invoice_line)
            .map(|l| l.quantity)
            .sum();
        if line.quantity == 0 || received > authorised {
            return Err(reject(
                codes::RETURN_BAD_LINES,
                format!("{}.lines[{i}].quantity", st.path),
                format!(
                    "RMA {} authorises {authorised} of line {}; {received} received",
                    e.rma, line.invoice_line
                ),
            ));
        }
    }
    request.received = true;
    if s.returns.iter().all(|r| r.received) {
        s.status = S::Returned;
    }
    Ok(())
}

fn tracking_scan(
    st: &Step,
    s: &mut ShipmentState,
    e: &TrackingScanRecorded,
) -> Result<(), Rejection> {
    use ShipmentStatus as S;
    // The custodian scans what it holds; any carrier may scan, such as a hub that handles a
    // parcel in transit for the custodian.
    if st.signer.id != s.custodian && !st.signer.has_role(Role::Carrier) {
        return Err(reject(
            codes::SCAN_NOT_ALLOWED,
            "signer",
            format!(
                "{} is neither the custodian of shipment {} ({}) nor a carrier",
                st.signer.id, s.shipment_id, s.custodian
            ),
        ));
    }
    // Once delivered or returned the goods have left the carriers' hands; every earlier
    // status, the return leg included, accepts scans.
    if matches!(s.status, S::Delivered | S::Returned) {
        return Err(st.wrong_state(s));
    }
    if e.parcels.is_empty() {
        return Ok(());
    }
    let registered = st.state.parcels(&s.shipment_id).expect(
        "the state holds the registered parcels of every shipment a scan names \
         (apply records them, Store::load_state loads them)",
    );
    if let Some((i, sscc)) = e
        .parcels
        .iter()
        .enumerate()
        .find(|(_, sscc)| !registered.contains(*sscc))
    {
        return Err(reject(
            codes::SCAN_UNKNOWN_PARCEL,
            format!("{}.parcels[{i}]", st.path),
            format!(
                "parcel {sscc} is not one of the {} parcel(s) shipment {} was registered with",
                registered.len(),
                s.shipment_id
            ),
        ));
    }
    Ok(())
}

fn personal_data_erased(st: &Step, s: &mut ShipmentState) -> Result<(), Rejection> {
    // The seller, who collected the data, or an admin (acting on a request to the network)
    // records the erasure; any status, since erasure requests come any time.
    if st.signer.id != s.seller && !st.signer.has_role(Role::Admin) {
        return Err(reject(
            codes::PERSONAL_NOT_ALLOWED,
            "signer",
            format!(
                "{} is neither the seller of shipment {} ({}) nor an admin",
                st.signer.id, s.shipment_id, s.seller
            ),
        ));
    }
    if s.personal_erased {
        return Err(reject(
            codes::PERSONAL_ALREADY_ERASED,
            format!("{}.shipment_id", st.path),
            format!(
                "the personal data of shipment {} is already recorded as erased",
                s.shipment_id
            ),
        ));
    }
    s.personal_erased = true;
    Ok(())
}

/// The country part of a UN/LOCODE: its first two characters.
pub fn place_country(locode: &str) -> Option<&str> {
    locode.get(..2)
}

fn not_custodian(signer: &MemberRecord, s: &ShipmentState) -> Rejection {
    reject(
        codes::CUSTODY_NOT_CUSTODIAN,
        "signer",
        format!(
            "{} is not the custodian of shipment {}; {} is",
            signer.id, s.shipment_id, s.custodian
        ),
    )
}

fn held(s: &ShipmentState) -> Rejection {
    reject(
        codes::CUSTODY_HELD_BY_CUSTOMS,
        "event.kind",
        format!("customs holds shipment {}", s.shipment_id),
    )
}

fn current_declaration<'s>(
    s: &'s mut ShipmentState,
    referenced: &EventId,
    path: &str,
) -> Result<&'s mut DeclarationState, Rejection> {
    let shipment_id = s.shipment_id.clone();
    s.declaration
        .as_mut()
        .filter(|d| d.event == *referenced)
        .ok_or_else(|| {
            reject(
                codes::CUSTOMS_UNKNOWN_DECLARATION,
                format!("{path}.declaration"),
                format!("{referenced} is not the current declaration of shipment {shipment_id}"),
            )
        })
}

/// What an approved admin change writes.
enum Admitted {
    /// A member record.
    Member(MemberRecord),
    /// A rules activation, appended to the schedule.
    Rules(RulesActivation),
}

/// Checks an admin change (membership or rules schedule) and returns what it writes.
fn membership(
    state: &State,
    signer: &MemberRecord,
    e: &MembershipChanged,
    ctx: BlockContext,
    path: &str,
) -> Result<Admitted, Rejection> {
    require_role(signer, Role::Admin, "signer")?;
    check_quorum(state, signer, e, path)?;
    let field = |name: &str| format!("{path}.change.{name}");
    match &e.change {
        MembershipChange::Admit { member } => admit(state, member, &field("admit.member")),
        MembershipChange::RotateKey { member, new_key } => {
            let mut record = active_member(state, member, field("rotate_key.member"))?;
            fresh_key(state, new_key, field("rotate_key.new_key"))?;
            record.retired_keys.push(record.key);
            record.key = *new_key;
            Ok(Admitted::Member(record))
        }
        MembershipChange::Revoke { member, .. } => {
            let mut record = active_member(state, member, field("revoke.member"))?;
            record.status = MemberStatus::Revoked;
            Ok(Admitted::Member(record))
        }
        MembershipChange::ScheduleRules { activation } => {
            schedule_rules(state, activation, ctx, field("schedule_rules.activation"))
        }
    }
}

/// Checks that the signer and the approvals, each by an active admin over this chain's
/// change, make the admin quorum.
fn check_quorum(
    state: &State,
    signer: &MemberRecord,
    e: &MembershipChanged,
    path: &str,
) -> Result<(), Rejection> {
    let message = membership_approval_message(&state.chain_id, &e.change);
    let mut approvers = BTreeSet::from([&signer.id]);
    for (i, approval) in e.approvals.iter().enumerate() {
        let field = format!("{path}.approvals[{i}]");
        let admin = signer_of(state, &approval.admin)
            .ok()
            .filter(|m| m.has_role(Role::Admin))
            .ok_or_else(|| {
                reject(
                    codes::MEMBERSHIP_BAD_APPROVAL,
                    format!("{field}.admin"),
                    format!("{} is not an active admin key", approval.admin),
                )
            })?;
        approval
            .admin
            .verify(&message, &approval.signature)
            .map_err(|_| {
                reject(
                    codes::MEMBERSHIP_BAD_APPROVAL,
                    format!("{field}.signature"),
                    format!("approval by {} does not verify", admin.id),
                )
            })?;
        approvers.insert(&admin.id);
    }
    if approvers.len() < state.admin_quorum as usize {
        return Err(reject(
            codes::MEMBERSHIP_QUORUM,
            format!("{path}.approvals"),
            format!(
                "{} distinct admins approved; the quorum is {}",
                approvers.len(),
                state.admin_quorum
            ),
        ));
    }
    Ok(())
}

/// A new member's record; `field` names the member in the event.
fn admit(state: &State, member: &Member, field: &str) -> Result<Admitted, Rejection> {
    if state.member(&member.id).is_some() {
        return Err(reject(
            codes::MEMBER_EXISTS,
            format!("{field}.id"),
            format!("member {} already exists", member.id),
        ));
    }
    fresh_key(state, &member.key, format!("{field}.key"))?;
    let mut roles = member.roles.clone();
    roles.sort();
    roles.dedup();
    Ok(Admitted::Member(MemberRecord {
        id: member.id.clone(),
        name: member.name.clone(),
        roles,
        key: member.key,
        retired_keys: Vec::new(),
        status: MemberStatus::Active,
    }))
}

/// Checks that a key is a valid key no member holds or held.
fn fresh_key(state: &State, key: &PublicKey, field: String) -> Result<(), Rejection> {
    key.verifying_key()
        .map_err(|err| reject(codes::SIGNATURE_BAD_KEY, field.clone(), err.to_string()))?;
    if state.keys.contains_key(key) {
        return Err(reject(
            codes::MEMBER_EXISTS,
            field,
            format!("key {key} is already in use"),
        ));
    }
    Ok(())
}

/// A copy of an active member's record, to be changed and written back.
fn active_member(state: &State, id: &MemberId, field: String) -> Result<MemberRecord, Rejection> {
    let record = state.member(id).ok_or_else(|| {
        reject(
            codes::MEMBER_NOT_FOUND,
            field.clone(),
            format!("no member {id}"),
        )
    })?;
    if record.status == MemberStatus::Revoked {
        return Err(reject(
            codes::MEMBER_REVOKED,
            field,
            format!("member {id} is revoked"),
        ));
    }
    Ok(record.clone())
}

/// Checks a rules activation against the block and the schedule.
fn schedule_rules(
    state: &State,
    activation: &RulesActivation,
    ctx: BlockContext,
    field: String,
) -> Result<Admitted, Rejection> {
    // Strictly after this block: every event of a block is judged by one version, and no
    // block already judged changes its verdicts.
    if activation.from_height <= ctx.height {
        return Err(reject(
            codes::RULES_SCHEDULE_NOT_FUTURE,
            format!("{field}.from_height"),
            format!(
                "height {} is not after this block ({})",
                activation.from_height, ctx.height
            ),
        ));
    }
    let last = state.rules_schedule.last().copied();
    if let Some(last) = last.filter(|l| activation.from_height <= l.from_height) {
        return Err(reject(
            codes::RULES_SCHEDULE_ORDER,
            format!("{field}.from_height"),
            format!(
                "version {} is already scheduled from height {}",
                last.version, last.from_height
            ),
        ));
    }
    if let Some(last) = last.filter(|l| activation.version <= l.version) {
        return Err(reject(
            codes::RULES_SCHEDULE_ORDER,
            format!("{field}.version"),
            format!(
                "version {} is not newer than version {}, the last scheduled",
                activation.version, last.version
            ),
        ));
    }
    if state.rules_schedule.len() >= RULES_SCHEDULE_LEN_MAX {
        return Err(reject(
            codes::RULES_SCHEDULE_ORDER,
            field,
            format!("the schedule already holds {RULES_SCHEDULE_LEN_MAX} entries"),
        ));
    }
    Ok(Admitted::Rules(*activation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TestNet, GENESIS_TIME};

    const S: &str = "SHP-CHECK";

    /// The shipment after the first `events` events of the test lifecycle.
    fn after(events: usize) -> ShipmentState {
        let net = TestNet::new();
        let mut state = State::from_genesis(&net.genesis);
        let ctx = BlockContext {
            height: 1,
            time: Timestamp(GENESIS_TIME.0 + 60_000),
        };
        for event in net.lifecycle(S).iter().take(events) {
            apply(&mut state, event, ctx).expect("the lifecycle applies");
        }
        state
            .shipment(&ShipmentId::new(S))
            .expect("registered")
            .clone()
    }

    fn broken(s: &ShipmentState) -> &'static str {
        s.broken_invariant().expect("the corruption is caught")
    }

    #[test]
    fn every_state_of_the_lifecycle_keeps_the_invariants() {
        for events in 1..=11 {
            assert_eq!(after(events).broken_invariant(), None, "after {events}");
        }
    }

    #[test]
    fn custody_has_exactly_one_holder() {
        let mut s = after(2); // registered, a handoff proposed
        let pending = s.pending_handoff.clone().expect("proposed");
        s.pending_handoff.as_mut().expect("proposed").to = s.custodian.clone();
        assert!(broken(&s).contains("names the custodian"));
        s.pending_handoff = Some(pending);
        s.custodian = MemberId::new("carrier-swift");
        assert!(broken(&s).contains("registered"));
        s.status = ShipmentStatus::InTransit;
        assert!(broken(&s).contains("proposed by someone other"));
    }

    #[test]
    fn customs_states_need_their_declaration() {
        let mut s = after(7); // declared and paid
        assert_eq!(s.status, ShipmentStatus::AtCustoms);
        s.declaration = None;
        assert!(broken(&s).contains("at customs"));
        s.status = ShipmentStatus::Held;
        assert!(broken(&s).contains("held"));
        let mut s = after(8); // released in France
        s.released_in.clear();
        assert!(broken(&s).contains("released"));
    }

    #[test]
    fn returns_never_exceed_what_a_line_shipped() {
        let mut s = after(10); // a return of one unit of line 1 requested
        let shipped = invoiced_quantity(&s, 1).expect("line 1");
        s.returns[0].lines[0].quantity = shipped + 1;
        assert!(broken(&s).contains("exceed"));
        s.returns[0].lines[0].quantity = 1;
        s.returns[0].lines[0].invoice_line = 999;
        assert!(broken(&s).contains("exceed"));
        s.returns[0].lines[0].invoice_line = 1;
        s.returns[0].received = true;
        assert!(broken(&s).contains("no open return"));
        s.status = ShipmentStatus::Delivered;
        assert!(broken(&s).contains("not in the return leg"));
    }

    #[test]
    #[should_panic(expected = "shipment SHP-CHECK: a shipment records no event")]
    fn check_stops_on_a_broken_invariant() {
        let mut s = after(1);
        s.event_count = 0;
        s.check();
    }
}
