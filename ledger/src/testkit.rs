//! A small, fixed network and event builders for tests and benchmarks.
//!
//! Keys come from fixed seeds, so every run signs the same bytes. Compiled only for this
//! crate's tests and with the `testkit` feature; nothing in production uses it.

use crate::block::{vote_message, Block, CommitCertificate, CommitSignature};
use crate::chain::{build_block, BuiltBlock};
use crate::event::{sign, EncodedEvent, VerifiedEvent};
use crate::genesis::{Genesis, GenesisMember};
use crate::hash::Digest;
use crate::keys::{KeyCache, Keypair};
use crate::model::*;
use crate::personal::{commitment, Disclosure, PersonalField, Salt};
use crate::reject::Rejection;
use crate::rules::{NoRules, Rules};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// The chain id of the test network.
pub const CHAIN_ID: &str = "custody-test";

/// Members of the test network: (id, roles, runs a validator).
pub const MEMBERS: &[(&str, &[Role], bool)] = &[
    ("seller-acme", &[Role::Seller], true),
    ("carrier-swift", &[Role::Carrier], true),
    ("carrier-lastmile", &[Role::Carrier], false),
    ("broker-clear", &[Role::CustomsBroker], true),
    ("customs-qx", &[Role::CustomsAuthority], true),
    ("auditor-ivy", &[Role::Auditor], false),
    ("admin-1", &[Role::Admin], false),
    ("admin-2", &[Role::Admin], false),
    ("admin-3", &[Role::Admin], false),
];

/// 2026-11-01T00:00:00Z, the test network's genesis time.
pub const GENESIS_TIME: Timestamp = Timestamp(1_793_491_200_000);

/// The test network: its genesis and every key.
#[derive(Debug)]
pub struct TestNet {
    /// The genesis document.
    pub genesis: Genesis,
    members: Vec<(MemberId, Keypair)>,
    validators: Vec<Keypair>,
}

fn seed(tag: u8, index: usize) -> [u8; 32] {
    let mut seed = [tag; 32];
    seed[0] = u8::try_from(index).expect("few test members");
    seed
}

impl Default for TestNet {
    fn default() -> Self {
        TestNet::new()
    }
}

impl TestNet {
    /// The fixed network: four validators (seller, carrier, broker, authority), admin
    /// quorum two of three.
    pub fn new() -> TestNet {
        let mut members = Vec::new();
        let mut validators = Vec::new();
        let mut genesis_members = Vec::new();
        for (i, (id, roles, validates)) in MEMBERS.iter().enumerate() {
            let key = Keypair::from_seed(seed(0xA1, i));
            let node = Keypair::from_seed(seed(0xB2, i));
            genesis_members.push(GenesisMember {
                id: MemberId::new(*id),
                name: format!("{id} Ltd"),
                roles: roles.to_vec(),
                key: key.public(),
                node_key: validates.then(|| node.public()),
                voting_power: u64::from(*validates),
            });
            members.push((MemberId::new(*id), key));
            if *validates {
                validators.push(node);
            }
        }
        TestNet {
            genesis: Genesis {
                chain_id: CHAIN_ID.into(),
                genesis_time: GENESIS_TIME,
                admin_quorum: 2,
                members: genesis_members,
                // Version 1 from the start: the rule tests written for it keep judging by it.
                // Tests of a later version schedule it with `with_rules_version`.
                rules_schedule: vec![RulesActivation {
                    version: 1,
                    from_height: 1,
                }],
            },
            members,
            validators,
        }
    }

    /// The same network with one rules version from height 1 (a different network: the
    /// genesis hash changes with it).
    pub fn with_rules_version(mut self, version: u32) -> TestNet {
        self.genesis.rules_schedule = vec![RulesActivation {
            version,
            from_height: 1,
        }];
        self
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Digest {
        self.genesis.hash()
    }

    /// A member's signing key.
    pub fn key(&self, member: &str) -> &Keypair {
        &self
            .members
            .iter()
            .find(|(id, _)| id.as_str() == member)
            .unwrap_or_else(|| panic!("no test member {member}"))
            .1
    }

    /// Validator node keys.
    pub fn validator_keys(&self) -> &[Keypair] {
        &self.validators
    }

    /// Signs an event as `member`.
    pub fn sign(&self, member: &str, kind: EventKind) -> EncodedEvent {
        self.sign_at(member, kind, GENESIS_TIME)
    }

    /// Signs an event as `member` with a given `occurred_at`.
    pub fn sign_at(&self, member: &str, kind: EventKind, occurred_at: Timestamp) -> EncodedEvent {
        EncodedEvent::new(sign(
            Event {
                chain_id: CHAIN_ID.into(),
                occurred_at,
                kind,
            },
            self.key(member),
        ))
    }

    /// A certificate signed by every validator.
    pub fn certify(&self, block: &Block) -> CommitCertificate {
        let hash = block.hash();
        let message = vote_message(CHAIN_ID, block.header.height, 0, &hash);
        CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: hash,
            signatures: self
                .validators
                .iter()
                .map(|v| CommitSignature {
                    validator: v.public(),
                    signature: v.sign(&message),
                })
                .collect(),
        }
    }

    /// Builds a block from `events` at `time` with no rule modules, certifies it and appends it.
    pub fn commit<S: Store + ?Sized>(
        &self,
        store: &S,
        events: Vec<EncodedEvent>,
        time: Timestamp,
    ) -> Result<BuiltBlock<NoRules>, StoreError> {
        self.commit_with(store, &NoRules, events, time)
    }

    /// Builds a block from `events` at `time` under `rules`, certifies it and appends it.
    /// Events whose signatures do not verify are left out, with their rejections first in
    /// the block's `rejected`, as a node's mempool would have refused them.
    pub fn commit_with<S: Store + ?Sized, R: Rules>(
        &self,
        store: &S,
        rules: &R,
        events: Vec<EncodedEvent>,
        time: Timestamp,
    ) -> Result<BuiltBlock<R>, StoreError> {
        let (verified, unsigned) = verify_each(events);
        let mut built = build_block(
            store,
            &self.genesis,
            rules,
            verified,
            time,
            self.validators[0].public(),
        )?;
        let cert = self.certify(built.block());
        store.append_block(&built.validated, &cert)?;
        built.rejected.splice(0..0, unsigned);
        Ok(built)
    }

    /// A nomenclature publication by `customs-qx` whose canonical encoding is about 1.2 MiB,
    /// over the 1 MiB event limit: every field has a valid shape, only the size is wrong
    /// (issue 11's halting event).
    pub fn oversize_publication(&self) -> EncodedEvent {
        let subheadings = (0..12_000)
            .map(|i| format!("{i:06}{}", "9".repeat(94)))
            .collect();
        let event = self.sign(
            "customs-qx",
            EventKind::ReferenceDataPublished(ReferenceDataPublished {
                table_id: "hs-nomenclature".into(),
                effective_from: Timestamp(1),
                data: ReferenceData::HsNomenclature(HsNomenclature {
                    edition: "HS2022-oversize".into(),
                    subheadings,
                }),
            }),
        );
        assert!(event.bytes().len() > crate::codec::EVENT_SIZE_BYTES_MAX);
        event
    }

    /// A registration of a shipment from `origin` to `destination` with two invoice lines.
    pub fn register(&self, shipment: &str, origin: &str, destination: &str) -> EncodedEvent {
        self.sign(
            "seller-acme",
            EventKind::ShipmentRegistered(registration(shipment, origin, destination)),
        )
    }

    /// `from` proposes handing `shipment` to `to` in Hamburg.
    pub fn propose(&self, from: &str, shipment: &str, to: &str) -> EncodedEvent {
        self.propose_at(from, shipment, to, "DEHAM")
    }

    /// `from` proposes handing `shipment` to `to` at a UN/LOCODE.
    pub fn propose_at(&self, from: &str, shipment: &str, to: &str, place: &str) -> EncodedEvent {
        self.sign(
            from,
            EventKind::HandoffProposed(HandoffProposed {
                shipment_id: ShipmentId::new(shipment),
                to: MemberId::new(to),
                place: place.into(),
                transport_document: Some(TransportDocument {
                    kind: TransportDocumentKind::AirWaybill,
                    number: "02012345675".into(),
                }),
            }),
        )
    }

    /// `by` accepts the handoff `proposal`.
    pub fn accept(&self, by: &str, shipment: &str, proposal: &EncodedEvent) -> EncodedEvent {
        self.sign(
            by,
            EventKind::HandoffAccepted(HandoffAccepted {
                shipment_id: ShipmentId::new(shipment),
                proposal: proposal.id(),
            }),
        )
    }

    /// The broker declares `shipment` in `jurisdiction` with the given duty and tax (EUR).
    pub fn declare(
        &self,
        shipment: &str,
        jurisdiction: &str,
        duty_minor: u64,
        tax_minor: u64,
    ) -> EncodedEvent {
        self.sign(
            "broker-clear",
            EventKind::CustomsDeclared(CustomsDeclared {
                shipment_id: ShipmentId::new(shipment),
                declaration_ref: format!("DEC-{shipment}"),
                jurisdiction: CountryCode::parse(jurisdiction).expect("test country"),
                transport_mode: TransportMode::Courier,
                currency: eur(),
                valuation_basis: ValuationBasis::CIF,
                customs_value_minor: 25_000,
                freight_minor: 1_000,
                insurance_minor: 200,
                exchange_rate: None,
                regime: CustomsRegime::Full,
                lines: vec![DeclarationLine {
                    invoice_line: 1,
                    hs_code: "6109100010".into(),
                    customs_value_minor: 25_000,
                    duty_minor,
                    tax_minor,
                }],
                duty_total_minor: duty_minor,
                tax_total_minor: tax_minor,
            }),
        )
    }

    /// `payer` pays `amount_minor` EUR against `declaration`.
    pub fn pay(
        &self,
        payer: &str,
        shipment: &str,
        declaration: &EncodedEvent,
        amount_minor: u64,
    ) -> EncodedEvent {
        self.sign(
            payer,
            EventKind::DutyPaid(DutyPaid {
                shipment_id: ShipmentId::new(shipment),
                declaration: declaration.id(),
                amount: Money {
                    amount_minor,
                    currency: eur(),
                },
                payment_reference: format!("PAY-{shipment}-{amount_minor}"),
            }),
        )
    }

    /// The broker records `outcome` for `declaration`.
    pub fn clear(
        &self,
        shipment: &str,
        declaration: &EncodedEvent,
        outcome: ClearanceOutcome,
    ) -> EncodedEvent {
        self.sign(
            "broker-clear",
            EventKind::CustomsCleared(CustomsCleared {
                shipment_id: ShipmentId::new(shipment),
                declaration: declaration.id(),
                outcome,
                authority_reference: format!("MRN-{shipment}"),
                reason: String::new(),
            }),
        )
    }

    /// `by` delivers `shipment`.
    pub fn deliver(&self, by: &str, shipment: &str) -> EncodedEvent {
        self.sign(
            by,
            EventKind::Delivered(Delivered {
                shipment_id: ShipmentId::new(shipment),
                place: "FRPAR".into(),
                proof_kind: ProofKind::Signature,
                proof_hash: Digest::sha256(shipment.as_bytes()),
                received_by_commitment: commitment(
                    &receiver_name(shipment),
                    &salt_for(shipment, PersonalField::ReceivedBy),
                ),
            }),
        )
    }

    /// The seller authorises returning `quantity` units of invoice line 1.
    pub fn request_return(&self, shipment: &str, rma: &str, quantity: u64) -> EncodedEvent {
        self.sign(
            "seller-acme",
            EventKind::ReturnRequested(ReturnRequested {
                shipment_id: ShipmentId::new(shipment),
                rma: rma.into(),
                lines: vec![LineQuantity {
                    invoice_line: 1,
                    quantity,
                }],
                reason: "wrong size".into(),
            }),
        )
    }

    /// The seller receives `quantity` units of line 1 back under `rma`.
    pub fn receive_return(&self, shipment: &str, rma: &str, quantity: u64) -> EncodedEvent {
        self.sign(
            "seller-acme",
            EventKind::ReturnReceived(ReturnReceived {
                shipment_id: ShipmentId::new(shipment),
                rma: rma.into(),
                lines: vec![ReturnedLine {
                    invoice_line: 1,
                    quantity,
                    disposition: Disposition::Resellable,
                }],
            }),
        )
    }

    /// `by` records that the personal data of `shipment` was erased.
    pub fn erase_personal(&self, by: &str, shipment: &str) -> EncodedEvent {
        self.sign(
            by,
            EventKind::PersonalDataErased(PersonalDataErased {
                shipment_id: ShipmentId::new(shipment),
            }),
        )
    }

    /// `by` records a tracking scan of `shipment` at a UN/LOCODE (see [`tracking_scan`]).
    pub fn scan(&self, by: &str, shipment: &str, place: &str) -> EncodedEvent {
        self.sign(
            by,
            EventKind::TrackingScanRecorded(tracking_scan(shipment, place)),
        )
    }

    /// The whole happy path of one shipment from Shanghai to Paris, from registration to a
    /// received return: eleven events, each valid after the ones before it. The air carrier
    /// picks it up in Shanghai and hands it to the last-mile carrier at Paris-Charles de Gaulle
    /// (its arrival in France); the broker declares it, the seller pays (DDP), customs releases
    /// it, the last-mile carrier delivers, and one unit comes back.
    pub fn lifecycle(&self, shipment: &str) -> Vec<EncodedEvent> {
        let reg = self.register(shipment, "CN", "FR");
        let p1 = self.propose_at("seller-acme", shipment, "carrier-swift", "CNSHA");
        let a1 = self.accept("carrier-swift", shipment, &p1);
        let p2 = self.propose_at("carrier-swift", shipment, "carrier-lastmile", "FRCDG");
        let a2 = self.accept("carrier-lastmile", shipment, &p2);
        let decl = self.declare(shipment, "FR", 300, 5_060);
        let paid = self.pay("seller-acme", shipment, &decl, 5_360);
        let cleared = self.clear(shipment, &decl, ClearanceOutcome::Release);
        let delivered = self.deliver("carrier-lastmile", shipment);
        let requested = self.request_return(shipment, &format!("RMA-{shipment}"), 1);
        let received = self.receive_return(shipment, &format!("RMA-{shipment}"), 1);
        vec![
            reg, p1, a1, p2, a2, decl, paid, cleared, delivered, requested, received,
        ]
    }
}

/// The euro.
pub fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").expect("EUR is three capitals")
}

/// A deterministic test salt derived from a counter: `SHA-256("custody/test-salt" || n as
/// 8 bytes little endian)`. Real salts are 32 random bytes.
pub fn salt(n: u64) -> Salt {
    Salt(Digest::of(b"custody/test-salt", &[&n.to_le_bytes()]).0)
}

/// The deterministic salt of a personal field of a test shipment's events:
/// `SHA-256("custody/test-salt" || shipment || 0x00 || field name)`.
pub fn salt_for(shipment: &str, field: PersonalField) -> Salt {
    Salt(
        Digest::of(
            b"custody/test-salt",
            &[shipment.as_bytes(), &[0], field.as_str().as_bytes()],
        )
        .0,
    )
}

/// The buyer's name in a test shipment's registration (`buyer.name`).
pub fn buyer_name(_shipment: &str) -> String {
    "J. Buyer".into()
}

/// Who received a test shipment's delivery (`received_by`).
pub fn receiver_name(_shipment: &str) -> String {
    "J. Buyer".into()
}

/// The disclosures of a test shipment's buyer name and, if it was delivered with `deliver`,
/// its receiver: what the seller keeps off the ledger.
pub fn disclosures(
    shipment: &str,
    registration: EventId,
    delivery: Option<EventId>,
) -> Vec<Disclosure> {
    let mut out = vec![Disclosure::new(
        registration,
        PersonalField::BuyerName,
        buyer_name(shipment),
        salt_for(shipment, PersonalField::BuyerName),
    )];
    if let Some(delivery) = delivery {
        out.push(Disclosure::new(
            delivery,
            PersonalField::ReceivedBy,
            receiver_name(shipment),
            salt_for(shipment, PersonalField::ReceivedBy),
        ));
    }
    out
}

/// A private buyer: name committed under `salt`, no address, no registrations.
pub fn buyer(name: &str, country: &str, salt: &Salt) -> Buyer {
    Buyer {
        name_commitment: commitment(name, salt),
        address_commitment: None,
        country: CountryCode::parse(country).expect("test country"),
        tax_ids: vec![],
        personal_id_commitment: None,
    }
}

/// A tracking scan payload: the registration's parcel `departing` a hub at `place`, left
/// `in_transit`, read at a GLN, with one temperature reading of 4.5 °C within 2–8 °C.
pub fn tracking_scan(shipment: &str, place: &str) -> TrackingScanRecorded {
    TrackingScanRecorded {
        shipment_id: ShipmentId::new(shipment),
        parcels: vec!["106141411234567897".into()],
        biz_step: "departing".into(),
        disposition: "in_transit".into(),
        read_point: place.into(),
        read_point_gln: Some("0614141000005".into()),
        biz_location: place.into(),
        sensor_readings: vec![SensorReading {
            kind: "Temperature".into(),
            unit: "CEL".into(),
            value_milli: 4_500,
            min_milli: Some(2_000),
            max_milli: Some(8_000),
        }],
        exception: false,
    }
}

/// A registration payload: two lines of T-shirts and mugs, one parcel.
pub fn registration(shipment: &str, origin: &str, destination: &str) -> ShipmentRegistered {
    let country = |c: &str| CountryCode::parse(c).expect("test country");
    let party = |name: &str, c: &str| Party {
        name: name.into(),
        country: country(c),
        tax_ids: vec![],
    };
    ShipmentRegistered {
        shipment_id: ShipmentId::new(shipment),
        parcels: vec![Parcel {
            sscc: "106141411234567897".into(),
            gross_weight_grams: 1_200,
        }],
        origin: country(origin),
        destination: country(destination),
        incoterm: Incoterm::DDP,
        incoterm_place: "Paris".into(),
        invoice: CommercialInvoice {
            number: format!("INV-{shipment}"),
            issued_at: GENESIS_TIME,
            currency: eur(),
            seller: party("Acme Trading", origin),
            buyer: buyer(
                &buyer_name(shipment),
                destination,
                &salt_for(shipment, PersonalField::BuyerName),
            ),
            lines: vec![
                InvoiceLine {
                    line_no: 1,
                    description: "Cotton T-shirt".into(),
                    hs_code: "6109.10".into(),
                    gtin: None,
                    quantity: 10,
                    unit: "PCE".into(),
                    unit_value_minor: 1_500,
                    net_weight_grams: 1_000,
                    origin_country: country(origin),
                },
                InvoiceLine {
                    line_no: 2,
                    description: "Ceramic mug".into(),
                    hs_code: "6912.00".into(),
                    gtin: None,
                    quantity: 2,
                    unit: "PCE".into(),
                    unit_value_minor: 5_000,
                    net_weight_grams: 200,
                    origin_country: country(origin),
                },
            ],
            total_minor: 25_000,
            freight_minor: 1_000,
            insurance_minor: 200,
        },
        packing_list: PackingList {
            lines: vec![
                PackingLine {
                    sscc: "106141411234567897".into(),
                    invoice_line: 1,
                    quantity: 10,
                },
                PackingLine {
                    sscc: "106141411234567897".into(),
                    invoice_line: 2,
                    quantity: 2,
                },
            ],
        },
    }
}

/// Verifies each event's signature on its own: those that verify, in order, and the
/// rejections of the others.
pub fn verify_each(events: Vec<EncodedEvent>) -> (Vec<VerifiedEvent>, Vec<(EventId, Rejection)>) {
    let keys = KeyCache::new();
    let mut verified = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    for event in events {
        let id = event.id();
        match event.verify(&keys) {
            Ok(event) => verified.push(event),
            Err(rejection) => refused.push((id, rejection)),
        }
    }
    (verified, refused)
}

/// Verifies every event's signature, panicking on one that does not verify: for tests that
/// build blocks from events they signed.
pub fn verified(events: impl IntoIterator<Item = EncodedEvent>) -> Vec<VerifiedEvent> {
    let keys = KeyCache::new();
    events
        .into_iter()
        .map(|e| e.verify(&keys).expect("a test event's signature verifies"))
        .collect()
}
