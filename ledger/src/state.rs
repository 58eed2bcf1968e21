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

fn existing<'s>(
    state: &'s State,
    id: &ShipmentId,
    path: &str,
) -> Result<&'s ShipmentState, Rejection> {
    state.shipment(id).ok_or_else(|| {
        reject(
            codes::SHIPMENT_UNKNOWN,
            format!("{path}.shipment_id"),
            format!("no shipment {id} is registered"),
        )
    })
}

/// Applies one event. On `Err` the state is unchanged.
///
/// The signature is not checked here (blocks verify signatures in a batch first); shape
/// checks (`event::check_shape`) are assumed to have passed.
pub fn apply(state: &mut State, event: &EncodedEvent, ctx: BlockContext) -> Result<(), Rejection> {
    if state.is_committed(&event.id) {
        return Err(reject(
            codes::EVENT_DUPLICATE,
            "event",
            format!("event {} is already on the ledger", event.id),
        ));
    }
    let signer = signer_of(state, &event.event.signer)?.clone();
    let kind = &event.event.event.kind;
    let path = format!("event.kind.{}", kind.name());
    match kind {
        EventKind::ReferenceDataPublished(e) => {
            require_role(&signer, Role::CustomsAuthority, "signer")?;
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
            state.reference.insert(key.clone(), event.id);
            state.new_reference.insert(key);
        }
        EventKind::MembershipChanged(e) => match membership(state, &signer, e, ctx, &path)? {
            Admitted::Member(record) => state.put_member(record),
            Admitted::Rules(activation) => {
                state.rules_schedule.push(activation);
                state.new_activations.push(activation);
            }
        },
        _ => {
            let next = transition(state, &signer, event, ctx, &path)?;
            if let EventKind::ShipmentRegistered(e) = kind {
                state.insert_parcels(
                    e.shipment_id.clone(),
                    e.parcels.iter().map(|p| p.sscc.clone()),
                );
            }
            state.put_shipment(next);
        }
    }
    state.committed.insert(event.id);
    Ok(())
}

/// The custody transition for shipment events: the new state of the shipment.
fn transition(
    state: &State,
    signer: &MemberRecord,
    event: &EncodedEvent,
    ctx: BlockContext,
    path: &str,
) -> Result<ShipmentState, Rejection> {
    let kind = &event.event.event.kind;
    let name = kind.name();
    let mut s = match kind {
        EventKind::ShipmentRegistered(e) => {
            require_role(signer, Role::Seller, "signer")?;
            if state.shipment(&e.shipment_id).is_some() {
                return Err(reject(
                    codes::SHIPMENT_EXISTS,
                    format!("{path}.shipment_id"),
                    format!("shipment {} is already registered", e.shipment_id),
                ));
            }
            ShipmentState {
                shipment_id: e.shipment_id.clone(),
                status: ShipmentStatus::Registered,
                seller: signer.id.clone(),
                custodian: signer.id.clone(),
                origin: e.origin,
                destination: e.destination,
                incoterm: e.incoterm,
                registered_event: event.id,
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
                last_event: event.id,
                personal_erased: false,
                head_entry: None,
            }
        }
        other => {
            let id = other
                .shipment_id()
                .expect("every kind but reference data and membership names a shipment");
            existing(state, id, path)?.clone()
        }
    };
    use ShipmentStatus as S;
    match kind {
        EventKind::ShipmentRegistered(_) => {}
        EventKind::HandoffProposed(e) => {
            if signer.id != s.custodian {
                return Err(not_custodian(signer, &s));
            }
            match s.status {
                S::Registered | S::InTransit | S::AtCustoms | S::Released | S::OutForDelivery => {}
                S::Held => return Err(held(&s)),
                _ => return Err(wrong_state(name, &s)),
            }
            if e.to == s.custodian {
                return Err(reject(
                    codes::CUSTODY_SELF_HANDOFF,
                    format!("{path}.to"),
                    format!("{} already holds shipment {}", e.to, s.shipment_id),
                ));
            }
            let receiver = state
                .member(&e.to)
                .filter(|m| m.status == MemberStatus::Active)
                .ok_or_else(|| {
                    reject(
                        codes::CUSTODY_RECEIVER_NOT_MEMBER,
                        format!("{path}.to"),
                        format!("{} is not an active member", e.to),
                    )
                })?;
            if ![Role::Carrier, Role::CustomsBroker, Role::Seller]
                .iter()
                .any(|r| receiver.has_role(*r))
            {
                return Err(reject(
                    codes::MEMBER_MISSING_ROLE,
                    format!("{path}.to"),
                    format!("{} holds no role that can take custody", e.to),
                ));
            }
            s.pending_handoff = Some(PendingHandoff {
                proposal: event.id,
                from: signer.id.clone(),
                to: e.to.clone(),
                place: e.place.clone(),
            });
        }
        EventKind::HandoffAccepted(e) => {
            if s.status == S::Held {
                return Err(held(&s));
            }
            let pending = s
                .pending_handoff
                .clone()
                .filter(|p| p.proposal == e.proposal)
                .ok_or_else(|| {
                    reject(
                        codes::CUSTODY_NO_PENDING_HANDOFF,
                        format!("{path}.proposal"),
                        format!(
                            "proposal {} is not the pending handoff of shipment {}",
                            e.proposal, s.shipment_id
                        ),
                    )
                })?;
            if signer.id != pending.to {
                return Err(reject(
                    codes::CUSTODY_NOT_RECEIVER,
                    "signer",
                    format!(
                        "the handoff names {} as receiver, not {}",
                        pending.to, signer.id
                    ),
                ));
            }
            s.custodian = pending.to;
            if place_country(&pending.place) == Some(s.destination.as_str()) {
                s.arrived_in_destination = true;
            }
            s.last_place = Some(pending.place);
            s.pending_handoff = None;
            s.status = match s.status {
                S::Registered => S::InTransit,
                S::Released => S::OutForDelivery,
                other => other,
            };
        }
        EventKind::CustomsDeclared(e) => {
            require_role(signer, Role::CustomsBroker, "signer")?;
            if !matches!(s.status, S::InTransit | S::Held) {
                return Err(wrong_state(name, &s));
            }
            // Payments already made for the shipment in the same currency still count when
            // a held shipment is declared again.
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
                        format!("{path}.tax_total_minor"),
                        "duty plus tax overflows",
                    )
                })?;
            s.declaration = Some(DeclarationState {
                event: event.id,
                jurisdiction: e.jurisdiction,
                currency: e.currency,
                due_minor,
                paid_minor,
                outcome: None,
            });
            s.status = S::AtCustoms;
        }
        EventKind::DutyPaid(e) => {
            if !matches!(s.status, S::AtCustoms | S::Held) {
                return Err(wrong_state(name, &s));
            }
            let declaration = current_declaration(&mut s, &e.declaration, path)?;
            if e.amount.currency != declaration.currency {
                return Err(reject(
                    codes::DUTY_CURRENCY_MISMATCH,
                    format!("{path}.amount.currency"),
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
                    format!("{path}.amount.amount_minor"),
                    format!(
                        "payments would total {paid}, more than the {} assessed",
                        declaration.due_minor
                    ),
                ));
            }
            declaration.paid_minor = paid;
        }
        EventKind::CustomsCleared(e) => {
            require_role(signer, Role::CustomsBroker, "signer")?;
            if !matches!(s.status, S::AtCustoms | S::Held) {
                return Err(wrong_state(name, &s));
            }
            let destination = s.destination;
            let declaration = current_declaration(&mut s, &e.declaration, path)?;
            let jurisdiction = declaration.jurisdiction;
            if e.outcome == ClearanceOutcome::Release
                && declaration.paid_minor < declaration.due_minor
            {
                return Err(reject(
                    codes::CUSTOMS_UNPAID,
                    format!("{path}.outcome"),
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
        }
        EventKind::Delivered(e) => {
            require_role(signer, Role::Carrier, "signer")?;
            if signer.id != s.custodian {
                return Err(not_custodian(signer, &s));
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
                _ => return Err(wrong_state(name, &s)),
            }
            s.status = S::Delivered;
            s.pending_handoff = None;
            s.last_place = Some(e.place.clone());
        }
        EventKind::ReturnRequested(e) => {
            if signer.id != s.seller {
                return Err(reject(
                    codes::RETURN_NOT_SELLER,
                    "signer",
                    format!("only the seller {} authorises returns", s.seller),
                ));
            }
            if !matches!(s.status, S::Delivered | S::ReturnRequested | S::Returned) {
                return Err(wrong_state(name, &s));
            }
            if s.returns.iter().any(|r| r.rma == e.rma) {
                return Err(reject(
                    codes::RETURN_BAD_RMA,
                    format!("{path}.rma"),
                    format!("RMA {} is already used for this shipment", e.rma),
                ));
            }
            for (i, line) in e.lines.iter().enumerate() {
                let shipped = s
                    .invoice
                    .lines
                    .iter()
                    .find(|l| l.line_no == line.invoice_line)
                    .map(|l| l.quantity)
                    .ok_or_else(|| {
                        reject(
                            codes::RETURN_BAD_LINES,
                            format!("{path}.lines[{i}].invoice_line"),
                            format!("the invoice has no line {}", line.invoice_line),
                        )
                    })?;
                let already: u64 = s
                    .returns
                    .iter()
                    .flat_map(|r| &r.lines)
                    .chain(&e.lines[..i])
                    .filter(|l| l.invoice_line == line.invoice_line)
                    .map(|l| l.quantity)
                    .sum();
                if line.quantity == 0 || line.quantity > shipped.saturating_sub(already) {
                    return Err(reject(
                        codes::RETURN_BAD_LINES,
                        format!("{path}.lines[{i}].quantity"),
                        format!(
                            "line {} shipped {shipped}, {already} already returned; {} requested",
                            line.invoice_line, line.quantity
                        ),
                    ));
                }
            }
            s.returns.push(ReturnState {
                rma: e.rma.clone(),
                lines: e.lines.clone(),
                received: false,
            });
            s.status = S::ReturnRequested;
        }
        EventKind::ReturnReceived(e) => {
            if signer.id != s.seller {
                return Err(reject(
                    codes::RETURN_NOT_SELLER,
                    "signer",
                    format!("only the seller {} receives returns", s.seller),
                ));
            }
            if s.status != S::ReturnRequested {
                return Err(wrong_state(name, &s));
            }
            let request = s
                .returns
                .iter_mut()
                .find(|r| r.rma == e.rma && !r.received)
                .ok_or_else(|| {
                    reject(
                        codes::RETURN_BAD_RMA,
                        format!("{path}.rma"),
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
                        format!("{path}.lines[{i}].quantity"),
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
        }
        EventKind::DocumentAttested(_) => {}
        EventKind::TrackingScanRecorded(e) => {
            // The custodian scans what it holds; any carrier may scan, such as a hub that
            // handles a parcel in transit for the custodian.
            if signer.id != s.custodian && !signer.has_role(Role::Carrier) {
                return Err(reject(
                    codes::SCAN_NOT_ALLOWED,
                    "signer",
                    format!(
                        "{} is neither the custodian of shipment {} ({}) nor a carrier",
                        signer.id, s.shipment_id, s.custodian
                    ),
                ));
            }
            // Once delivered or returned the goods have left the carriers' hands; every
            // earlier status, the return leg included, accepts scans.
            if matches!(s.status, S::Delivered | S::Returned) {
                return Err(wrong_state(name, &s));
            }
            if !e.parcels.is_empty() {
                let registered = state.parcels(&s.shipment_id).expect(
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
                        format!("{path}.parcels[{i}]"),
                        format!(
                            "parcel {sscc} is not one of the {} parcel(s) shipment {} was \
                             registered with",
                            registered.len(),
                            s.shipment_id
                        ),
                    ));
                }
            }
        }
        EventKind::PersonalDataErased(_) => {
            // The seller, who collected the data, or an admin (acting on a request to the
            // network) records the erasure; any status, since erasure requests come any time.
            if signer.id != s.seller && !signer.has_role(Role::Admin) {
                return Err(reject(
                    codes::PERSONAL_NOT_ALLOWED,
                    "signer",
                    format!(
                        "{} is neither the seller of shipment {} ({}) nor an admin",
                        signer.id, s.shipment_id, s.seller
                    ),
                ));
            }
            if s.personal_erased {
                return Err(reject(
                    codes::PERSONAL_ALREADY_ERASED,
                    format!("{path}.shipment_id"),
                    format!(
                        "the personal data of shipment {} is already recorded as erased",
                        s.shipment_id
                    ),
                ));
            }
            s.personal_erased = true;
        }
        EventKind::ReferenceDataPublished(_) | EventKind::MembershipChanged(_) => {
            unreachable!("handled by apply")
        }
    }
    s.event_count += 1;
    s.last_event = event.id;
    s.updated_at = ctx.time;
    Ok(s)
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
    let message = membership_approval_message(&state.chain_id, &e.change);
    let mut approvers = BTreeSet::from([signer.id.clone()]);
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
        approvers.insert(admin.id.clone());
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
    let fresh_key = |key: &PublicKey, field: String| -> Result<(), Rejection> {
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
    };
    let active = |id: &MemberId, field: String| -> Result<MemberRecord, Rejection> {
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
    };
    match &e.change {
        MembershipChange::Admit { member } => {
            if state.member(&member.id).is_some() {
                return Err(reject(
                    codes::MEMBER_EXISTS,
                    format!("{path}.change.admit.member.id"),
                    format!("member {} already exists", member.id),
                ));
            }
            fresh_key(&member.key, format!("{path}.change.admit.member.key"))?;
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
        MembershipChange::RotateKey { member, new_key } => {
            let mut record = active(member, format!("{path}.change.rotate_key.member"))?;
            fresh_key(new_key, format!("{path}.change.rotate_key.new_key"))?;
            record.retired_keys.push(record.key);
            record.key = *new_key;
            Ok(Admitted::Member(record))
        }
        MembershipChange::Revoke { member, .. } => {
            let mut record = active(member, format!("{path}.change.revoke.member"))?;
            record.status = MemberStatus::Revoked;
            Ok(Admitted::Member(record))
        }
        MembershipChange::ScheduleRules { activation } => {
            let field = format!("{path}.change.schedule_rules.activation");
            // Strictly after this block: every event of a block is judged by one version,
            // and no block already judged changes its verdicts.
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
    }
}
