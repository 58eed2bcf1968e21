//! The shipment scenario, written once: the demo, the benchmark and the whole-network tests
//! run their shipments through it.
//!
//! A shipment's lifecycle is data: a [`Plan`] holds the sale and its goods, the broker's
//! declaration [`Choices`] and the list of [`Step`]s — who hands the shipment to whom and
//! where, who pays, what customs decides, where it is delivered, what comes back. One
//! function, [`Shipment::sign`], turns a step into the signed event its party submits, given
//! the [`Cast`]: which member plays each [`Part`], with its signing key. The members and keys
//! are plain values, so a network with other genesis keys (the test kit's) uses the same
//! scenario as the devnet.
//!
//! Before any lifecycle is valid, the network needs the reference data it is assessed
//! against: [`reference_events`] are the customs authority's publications of the devnet's
//! tables ([`crate::reference::tables`]), to commit first.
//!
//! [`workload`] signs the benchmark's whole lifecycles in advance: EU-bound DDP parcels under
//! the low-value regime (the seller pays) and parcels to the sample jurisdiction QX under
//! FOB, fully assessed (the broker pays), alternately; one shipment in six is returned.
//!
//! **Determinism.** Nothing here reads the clock: every event carries the `now` its caller
//! passes. The personal values the events commit to (the buyer's name, the receiver's name)
//! are committed under salts derived from the cast's salt seed and the shipment
//! ([`Cast::salt`]). The seed is fixed unless set ([`Cast::with_salt_seed`]): tests get the
//! same bytes every run, and guessable salts, which is harmless for test names. The demo and
//! the benchmark draw a random seed, so the names they commit cannot be found by guessing.
//! Event signatures are deterministic (Ed25519), so the same cast, seed and `now` sign the
//! same events.

use anyhow::{anyhow, bail, Context as _};
use custody_client::build::Signer;
use custody_contracts::ReferenceBook;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::{
    ClearanceOutcome, CustomsCleared, CustomsDeclared, CustomsRegime, Delivered, Disposition,
    DocumentAttested, DutyPaid, EventId, HandoffAccepted, HandoffProposed, LineQuantity, MemberId,
    Money, ProofKind, ReturnReceived, ReturnRequested, ReturnedLine, ShipmentId,
    ShipmentRegistered, TrackingScanRecorded, TransportDocument, TransportDocumentKind,
};
use custody_ledger::personal::{commitment, Disclosure, PersonalField, Salt};
use custody_ledger::{Digest, Keypair, Timestamp};

use crate::documents::{self, awb, Choices, Goods, Sale};
use crate::reference;
use crate::roster::{BROKER, CARRIER, CUSTOMS, LASTMILE, SELLER};
use crate::setup::Devnet;

/// A part in the scenario, played by one member of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Registers shipments, pays duty under DDP, handles returns, attests documents.
    Seller,
    /// The air carrier that takes shipments from the seller; its hub scans them.
    Carrier,
    /// The last-mile carrier that delivers in the destination country.
    LastMile,
    /// The customs broker: declares, pays as the buyer's agent, records clearance.
    Broker,
    /// The customs authority: publishes the reference data.
    Customs,
}

impl Part {
    /// Every part, in the order a [`Cast`] is built.
    pub const ALL: [Part; 5] = [
        Part::Seller,
        Part::Carrier,
        Part::LastMile,
        Part::Broker,
        Part::Customs,
    ];

    /// The member id the devnet's roster gives this part. The test kit's `TestNet` uses the
    /// same ids but for the customs authority (`customs-qx` there).
    pub fn devnet_member(self) -> &'static str {
        match self {
            Part::Seller => SELLER,
            Part::Carrier => CARRIER,
            Part::LastMile => LASTMILE,
            Part::Broker => BROKER,
            Part::Customs => CUSTOMS,
        }
    }

    fn index(self) -> usize {
        match self {
            Part::Seller => 0,
            Part::Carrier => 1,
            Part::LastMile => 2,
            Part::Broker => 3,
            Part::Customs => 4,
        }
    }
}

/// A member playing a part: its id and its signer (key and chain id).
#[derive(Debug)]
pub struct Member {
    /// The member id, as in the genesis.
    pub id: MemberId,
    /// Its event-signing key on the network.
    pub signer: Signer,
}

/// Who plays each part, with their signing keys, and the seed of the salts of the personal
/// values the scenario commits to.
pub struct Cast {
    /// One member per part, in [`Part::ALL`] order.
    members: Vec<Member>,
    salt_seed: [u8; 32],
}

impl std::fmt::Debug for Cast {
    /// Never prints the salt seed: with it, the committed names could be checked by guessing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cast")
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Cast {
    /// The cast of the network `chain_id`: `member(part)` gives the id of the member playing
    /// each part and its signing key. The salt seed is fixed (see the module's notes on
    /// determinism); [`Cast::with_salt_seed`] sets another.
    ///
    /// A test network from `custody_ledger::testkit::TestNet` (whose keys cannot be moved
    /// out) makes its cast with copies of them:
    ///
    /// ```ignore
    /// let cast = Cast::new(testkit::CHAIN_ID, |part| {
    ///     let id = match part {
    ///         Part::Customs => "customs-qx",
    ///         other => other.devnet_member(),
    ///     };
    ///     (id.to_owned(), Keypair::from_seed(net.key(id).signing_key().to_bytes()))
    /// });
    /// ```
    pub fn new(chain_id: &str, mut member: impl FnMut(Part) -> (String, Keypair)) -> Cast {
        match Cast::try_new(chain_id, |part| {
            Ok::<_, std::convert::Infallible>(member(part))
        }) {
            Ok(cast) => cast,
            Err(never) => match never {},
        }
    }

    /// [`Cast::new`] with a member lookup that may fail (reading key files).
    pub fn try_new<E>(
        chain_id: &str,
        mut member: impl FnMut(Part) -> Result<(String, Keypair), E>,
    ) -> Result<Cast, E> {
        let mut members = Vec::with_capacity(Part::ALL.len());
        for part in Part::ALL {
            let (id, key) = member(part)?;
            members.push(Member {
                id: MemberId::new(id),
                signer: Signer::new(key, chain_id),
            });
        }
        Ok(Cast {
            members,
            salt_seed: [0; 32],
        })
    }

    /// The cast of a devnet: its roster's members ([`Part::devnet_member`]) with the keys in
    /// its directory, salts derived from `salt_seed`.
    pub fn of_devnet(devnet: &Devnet, salt_seed: [u8; 32]) -> anyhow::Result<Cast> {
        let cast = Cast::try_new(&devnet.genesis.chain_id, |part| {
            let id = part.devnet_member();
            devnet.signer(id).map(|signer| (id.to_owned(), signer.key))
        })?;
        Ok(cast.with_salt_seed(salt_seed))
    }

    /// The same cast with the salts of its commitments derived from `seed` (see
    /// [`Cast::salt`]). A random seed makes them as good as random salts.
    pub fn with_salt_seed(mut self, seed: [u8; 32]) -> Cast {
        self.salt_seed = seed;
        self
    }

    /// The member playing `part`.
    pub fn member(&self, part: Part) -> &Member {
        &self.members[part.index()]
    }

    /// The signer of `part`.
    pub fn signer(&self, part: Part) -> &Signer {
        &self.member(part).signer
    }

    /// The member id of `part`.
    pub fn id(&self, part: Part) -> &MemberId {
        &self.member(part).id
    }

    /// The salt of a personal `field` of `shipment`:
    /// `SHA-256("custody/scenario-salt" || seed || shipment || 0x00 || field name)`. Each
    /// field of each shipment has its own; with a secret seed, none can be guessed.
    pub fn salt(&self, shipment: &str, field: PersonalField) -> Salt {
        Salt(
            Digest::of(
                b"custody/scenario-salt",
                &[
                    &self.salt_seed,
                    shipment.as_bytes(),
                    &[0],
                    field.as_str().as_bytes(),
                ],
            )
            .0,
        )
    }
}

/// One step of a lifecycle: one signed event, but for the places where a demo tells more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The seller registers the shipment: the plan's sale and goods in one parcel, the buyer's
    /// name committed.
    Register,
    /// `from`, the custodian, offers the shipment to `to` at `place` (a UN/LOCODE), naming
    /// the air waybill if `waybill`.
    Offer {
        /// The custodian.
        from: Part,
        /// The proposed custodian.
        to: Part,
        /// Where, a UN/LOCODE.
        place: &'static str,
        /// Whether the proposal names the air waybill.
        waybill: bool,
    },
    /// The party of the last offer accepts it.
    Accept,
    /// The carrier's hub scans the whole shipment (the demo posts these through the
    /// carrier's EPCIS gateway instead, which signs them the same way).
    Scan {
        /// A CBV bizStep (`departing`, `arriving`).
        biz_step: &'static str,
        /// A CBV disposition (`in_transit`).
        disposition: &'static str,
        /// Where, a UN/LOCODE: read point and business location.
        place: &'static str,
    },
    /// The broker declares with the plan's choices, every amount assessed against the
    /// reference book as the validators will assess it.
    Declare,
    /// `by` pays the duty and tax of the declaration.
    Pay {
        /// The payer.
        by: Part,
    },
    /// The broker records customs' decision on the declaration.
    Clear {
        /// Release or hold.
        outcome: ClearanceOutcome,
        /// Why, for a hold; empty for a release.
        reason: &'static str,
    },
    /// The seller attests a document of the shipment by its hash.
    Attest {
        /// Its type, such as `certificate_of_origin`.
        document_type: &'static str,
        /// Its number's prefix: the number is `{prefix}-{shipment id}`.
        reference_prefix: &'static str,
    },
    /// `by`, the custodian, delivers at `place`, the receiver's name committed.
    Deliver {
        /// The custodian.
        by: Part,
        /// Where, a UN/LOCODE.
        place: &'static str,
        /// What proves it.
        proof: ProofKind,
        /// Who received it (committed; kept off the ledger).
        received_by: &'static str,
    },
    /// The seller authorises the return of `quantity` units of invoice line `line`, under the
    /// RMA `RMA-{shipment id}`.
    RequestReturn {
        /// The invoice line (from 1).
        line: u32,
        /// Units.
        quantity: u64,
        /// Why.
        reason: &'static str,
    },
    /// The seller receives the returned units.
    ReceiveReturn {
        /// The invoice line (from 1).
        line: u32,
        /// Units.
        quantity: u64,
        /// What becomes of them.
        disposition: Disposition,
    },
}

/// A shipment's plan: the sale, its goods, the broker's choices when declaring and the steps.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the invoice says beyond its goods.
    pub sale: Sale,
    /// The invoice lines.
    pub goods: Vec<Goods>,
    /// The declaration's choices; its reference is replaced by `DEC-{shipment id}`.
    pub choices: Choices,
    /// The lifecycle, in order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// The same plan, then one unit of the first invoice line returned (wrong size,
    /// resellable).
    pub fn with_return(&self) -> Plan {
        let mut plan = self.clone();
        plan.steps.extend([
            Step::RequestReturn {
                line: 1,
                quantity: 1,
                reason: "wrong size",
            },
            Step::ReceiveReturn {
                line: 1,
                quantity: 1,
                disposition: Disposition::Resellable,
            },
        ]);
        plan
    }
}

/// The broker's choices for an EU parcel to France under the low-value relief: T-shirts.
pub fn paris_choices() -> Choices {
    Choices {
        reference: String::new(),
        jurisdiction: "FR",
        currency: "EUR",
        exchange_rate: None,
        regime: CustomsRegime::DeMinimisRelief,
        hs_codes: vec!["61091000"],
    }
}

/// The broker's choices for the QX parcel, fully assessed: boots and a dinner set.
pub fn qx_choices() -> Choices {
    Choices {
        reference: String::new(),
        jurisdiction: "QX",
        currency: "EUR",
        exchange_rate: None,
        regime: CustomsRegime::Full,
        hs_codes: vec!["640399", "691200"],
    }
}

/// The two lifecycles of the [`workload`]: whole, delivered, no return.
///
/// - The Paris parcel ([`documents::paris_parcel`]), DDP: Shenzhen (CNSZX) to the air carrier,
///   Paris-Charles de Gaulle (FRCDG) to the last mile, declared under the low-value relief,
///   the seller pays, released, delivered in Paris (FRPAR).
/// - The QX parcel ([`documents::qx_parcel`]), FOB: Shanghai (CNSHA) to the air carrier,
///   QXAPT to the last mile, fully assessed, the broker pays, released, delivered in QXCTY.
pub fn workload_plans() -> [Plan; 2] {
    let delivered = |pickup, arrival, payer, delivery| {
        vec![
            Step::Register,
            Step::Offer {
                from: Part::Seller,
                to: Part::Carrier,
                place: pickup,
                waybill: true,
            },
            Step::Accept,
            Step::Offer {
                from: Part::Carrier,
                to: Part::LastMile,
                place: arrival,
                waybill: true,
            },
            Step::Accept,
            Step::Declare,
            Step::Pay { by: payer },
            Step::Clear {
                outcome: ClearanceOutcome::Release,
                reason: "",
            },
            Step::Deliver {
                by: Part::LastMile,
                place: delivery,
                proof: ProofKind::Signature,
                received_by: "Consignee",
            },
        ]
    };
    let (paris, qx) = (documents::paris_parcel(), documents::qx_parcel());
    [
        Plan {
            sale: paris.0,
            goods: paris.1,
            choices: paris_choices(),
            steps: delivered("CNSZX", "FRCDG", Part::Seller, "FRPAR"),
        },
        Plan {
            sale: qx.0,
            goods: qx.1,
            choices: qx_choices(),
            steps: delivered("CNSHA", "QXAPT", Part::Broker, "QXCTY"),
        },
    ]
}

/// A step signed: who submits it, the event, and the personal value it commits to with its
/// salt (for the party to disclose to its node, off the ledger), if any.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The part that signed it.
    pub by: Part,
    /// The event.
    pub event: EncodedEvent,
    /// The value behind a commitment in it.
    pub disclosure: Option<Disclosure>,
}

/// One shipment going through its plan: what the steps signed so far left for the next ones
/// (the registration, a pending offer, the declaration).
#[derive(Debug)]
pub struct Shipment<'p> {
    plan: &'p Plan,
    id: String,
    serial: u64,
    registration: Option<ShipmentRegistered>,
    offer: Option<(EventId, Part)>,
    declaration: Option<(EventId, CustomsDeclared)>,
}

impl<'p> Shipment<'p> {
    /// Shipment `id` following `plan`; `serial` numbers its parcel (SSCC) and air waybill.
    pub fn new(plan: &'p Plan, id: impl Into<String>, serial: u64) -> Shipment<'p> {
        Shipment {
            plan,
            id: id.into(),
            serial,
            registration: None,
            offer: None,
            declaration: None,
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its plan.
    pub fn plan(&self) -> &'p Plan {
        self.plan
    }

    /// Its air waybill number.
    pub fn waybill(&self) -> String {
        awb(self.serial)
    }

    /// The RMA its returns are made under.
    pub fn rma(&self) -> String {
        format!("RMA-{}", self.id)
    }

    /// The registration, once signed.
    pub fn registration(&self) -> Option<&ShipmentRegistered> {
        self.registration.as_ref()
    }

    /// The declaration, once signed.
    pub fn declaration(&self) -> Option<&CustomsDeclared> {
        self.declaration.as_ref().map(|(_, d)| d)
    }

    fn shipment_id(&self) -> ShipmentId {
        ShipmentId::new(self.id.clone())
    }

    fn declared(&self, step: &str) -> anyhow::Result<(EventId, &CustomsDeclared)> {
        self.declaration
            .as_ref()
            .map(|(id, d)| (*id, d))
            .ok_or_else(|| anyhow!("{}: {step} before the declaration", self.id))
    }

    /// Signs step number `index` of the plan at `now`, as its party; declarations are
    /// assessed against `book`. Steps are signed in order: each may refer to an earlier one
    /// (an acceptance to its offer, a payment to its declaration).
    pub fn sign(
        &mut self,
        cast: &Cast,
        book: &ReferenceBook,
        index: usize,
        now: Timestamp,
    ) -> anyhow::Result<Signed> {
        let plan = self.plan;
        let step = plan
            .steps
            .get(index)
            .ok_or_else(|| anyhow!("{} has no step {index}", self.id))?;
        let shipment_id = self.shipment_id();
        let signed = |by: Part, event: EncodedEvent| Signed {
            by,
            event,
            disclosure: None,
        };
        Ok(match step {
            Step::Register => {
                let buyer = &plan.sale.buyer.name;
                let salt = cast.salt(&self.id, PersonalField::BuyerName);
                let payload = documents::registration(
                    &self.id,
                    &plan.sale,
                    &plan.goods,
                    self.serial,
                    now,
                    &salt,
                );
                self.registration = Some(payload.clone());
                let event = cast.signer(Part::Seller).register(payload, now);
                Signed {
                    disclosure: Some(Disclosure::new(
                        event.id(),
                        PersonalField::BuyerName,
                        buyer.as_str(),
                        salt,
                    )),
                    ..signed(Part::Seller, event)
                }
            }
            Step::Offer {
                from,
                to,
                place,
                waybill,
            } => {
                let event = cast.signer(*from).propose_handoff(
                    HandoffProposed {
                        shipment_id,
                        to: cast.id(*to).clone(),
                        place: (*place).into(),
                        transport_document: waybill.then(|| TransportDocument {
                            kind: TransportDocumentKind::AirWaybill,
                            number: self.waybill(),
                        }),
                    },
                    now,
                );
                self.offer = Some((event.id(), *to));
                signed(*from, event)
            }
            Step::Accept => {
                let (proposal, to) = self
                    .offer
                    .take()
                    .ok_or_else(|| anyhow!("{}: an acceptance without an offer", self.id))?;
                let event = cast.signer(to).accept_handoff(
                    HandoffAccepted {
                        shipment_id,
                        proposal,
                    },
                    now,
                );
                signed(to, event)
            }
            Step::Scan {
                biz_step,
                disposition,
                place,
            } => {
                let event = cast.signer(Part::Carrier).record_scan(
                    TrackingScanRecorded {
                        shipment_id,
                        // The whole shipment, as the EPCIS gateway records a scan of every
                        // parcel.
                        parcels: Vec::new(),
                        biz_step: (*biz_step).into(),
                        disposition: (*disposition).into(),
                        read_point: (*place).into(),
                        read_point_gln: None,
                        biz_location: (*place).into(),
                        sensor_readings: Vec::new(),
                        exception: false,
                    },
                    now,
                );
                signed(Part::Carrier, event)
            }
            Step::Declare => {
                let registration = self
                    .registration
                    .as_ref()
                    .ok_or_else(|| anyhow!("{}: declared before registered", self.id))?;
                // What the broker's software knows of the shipment: the assessment reads the
                // invoice, origin, destination and Incoterm, all in the registration.
                let state =
                    documents::projected_state(registration, cast.id(Part::Seller).as_str());
                let choices = Choices {
                    reference: format!("DEC-{}", self.id),
                    ..plan.choices.clone()
                };
                let declared = documents::declaration(book, now, &state, &choices)
                    .with_context(|| format!("declaring {}", self.id))?;
                let event = cast.signer(Part::Broker).declare(declared.clone(), now);
                self.declaration = Some((event.id(), declared));
                signed(Part::Broker, event)
            }
            Step::Pay { by } => {
                let (declaration, declared) = self.declared("a payment")?;
                let event = cast.signer(*by).pay_duty(
                    DutyPaid {
                        shipment_id,
                        declaration,
                        amount: Money {
                            amount_minor: declared.duty_total_minor + declared.tax_total_minor,
                            currency: declared.currency,
                        },
                        payment_reference: format!("PAY-{}", self.id),
                    },
                    now,
                );
                signed(*by, event)
            }
            Step::Clear { outcome, reason } => {
                let (declaration, _) = self.declared("a clearance")?;
                let event = cast.signer(Part::Broker).clear(
                    CustomsCleared {
                        shipment_id,
                        declaration,
                        outcome: *outcome,
                        // The step's number tells a hold's reference from the release's.
                        authority_reference: format!("AUTH-{}-{index}", self.id),
                        reason: (*reason).into(),
                    },
                    now,
                );
                signed(Part::Broker, event)
            }
            Step::Attest {
                document_type,
                reference_prefix,
            } => {
                let document = format!("{document_type} of {}", self.id);
                let event = cast.signer(Part::Seller).attest_document(
                    DocumentAttested {
                        shipment_id,
                        document_type: (*document_type).into(),
                        document_hash: Digest::sha256(document.as_bytes()),
                        reference: format!("{reference_prefix}-{}", self.id),
                    },
                    now,
                );
                signed(Part::Seller, event)
            }
            Step::Deliver {
                by,
                place,
                proof,
                received_by,
            } => {
                let salt = cast.salt(&self.id, PersonalField::ReceivedBy);
                let evidence = format!("{proof:?} of {received_by} for {}", self.id);
                let event = cast.signer(*by).deliver(
                    Delivered {
                        shipment_id,
                        place: (*place).into(),
                        proof_kind: *proof,
                        proof_hash: Digest::sha256(evidence.as_bytes()),
                        received_by_commitment: commitment(received_by, &salt),
                    },
                    now,
                );
                Signed {
                    disclosure: Some(Disclosure::new(
                        event.id(),
                        PersonalField::ReceivedBy,
                        *received_by,
                        salt,
                    )),
                    ..signed(*by, event)
                }
            }
            Step::RequestReturn {
                line,
                quantity,
                reason,
            } => {
                let event = cast.signer(Part::Seller).request_return(
                    ReturnRequested {
                        shipment_id,
                        rma: self.rma(),
                        lines: vec![LineQuantity {
                            invoice_line: *line,
                            quantity: *quantity,
                        }],
                        reason: (*reason).into(),
                    },
                    now,
                );
                signed(Part::Seller, event)
            }
            Step::ReceiveReturn {
                line,
                quantity,
                disposition,
            } => {
                let event = cast.signer(Part::Seller).receive_return(
                    ReturnReceived {
                        shipment_id,
                        rma: self.rma(),
                        lines: vec![ReturnedLine {
                            invoice_line: *line,
                            quantity: *quantity,
                            disposition: *disposition,
                        }],
                    },
                    now,
                );
                signed(Part::Seller, event)
            }
        })
    }

    /// Signs every step of the plan at `now`, in order.
    pub fn sign_all(
        &mut self,
        cast: &Cast,
        book: &ReferenceBook,
        now: Timestamp,
    ) -> anyhow::Result<Vec<Signed>> {
        (0..self.plan.steps.len())
            .map(|index| self.sign(cast, book, index, now))
            .collect()
    }
}

/// The customs authority's publications of the devnet's reference data
/// ([`crate::reference::tables`]: the nomenclature, the sample tariffs of QX and QY, the
/// low-value regimes and the French tariff), signed by the cast's customs member at `now`:
/// committed before any lifecycle, they make its declarations assessable.
pub fn reference_events(cast: &Cast, now: Timestamp) -> Vec<EncodedEvent> {
    let customs = cast.signer(Part::Customs);
    reference::tables()
        .into_iter()
        .map(|table| customs.publish_reference(table, now))
        .collect()
}

/// The reference book the validators hold once `events` (publications) are committed.
pub fn reference_book(events: &[EncodedEvent]) -> ReferenceBook {
    let mut book = ReferenceBook::new();
    for event in events {
        book.learn(event);
    }
    book
}

/// One shipment's pre-signed events, in order, and the node they go to.
#[derive(Debug, Clone)]
pub struct ShipmentPlan {
    /// The node's index among those the workload was spread over.
    pub node: usize,
    /// The events, each valid once the ones before it are committed.
    pub events: Vec<EncodedEvent>,
}

/// Exactly `count` events of whole lifecycles signed at `now`, the last one possibly cut
/// short; declarations assessed against the book of [`reference_events`] (to be committed
/// first). See [`workload_with_book`].
pub fn workload(
    cast: &Cast,
    count: usize,
    nodes: usize,
    now: Timestamp,
) -> anyhow::Result<Vec<ShipmentPlan>> {
    let book = reference_book(&reference_events(cast, now));
    workload_with_book(&book, cast, count, nodes, now)
}

/// Exactly `count` events of whole lifecycles signed at `now`, declarations assessed against
/// `book`; the last lifecycle may be cut short.
///
/// Shipment `i` follows [`workload_plans`]`[i % 2]`, with a return when `i % 6 == 0`; its id
/// is `B-{run}-{i:06}`, where `run` is the low 32 bits of `now` in milliseconds, in hex (so
/// workloads signed at different times do not collide on one chain), and it goes to node
/// `i % nodes`. Its serial (parcel and air waybill) is `now` in milliseconds plus `i`.
pub fn workload_with_book(
    book: &ReferenceBook,
    cast: &Cast,
    count: usize,
    nodes: usize,
    now: Timestamp,
) -> anyhow::Result<Vec<ShipmentPlan>> {
    let plans = workload_plans();
    let returned: Vec<Plan> = plans.iter().map(Plan::with_return).collect();
    let now_ms = now.as_millis();
    let run = format!("{:08x}", now_ms & 0xffff_ffff);
    let mut shipments = Vec::new();
    let mut total = 0;
    // Each lifecycle adds at least nine events, so this ends after count / 9 + 1 turns.
    while total < count {
        let index = shipments.len();
        let plan = if index % 6 == 0 {
            &returned[index % plans.len()]
        } else {
            &plans[index % plans.len()]
        };
        let id = format!("B-{run}-{index:06}");
        let mut shipment = Shipment::new(plan, id, now_ms + index as u64);
        let mut events: Vec<EncodedEvent> = shipment
            .sign_all(cast, book, now)?
            .into_iter()
            .map(|s| s.event)
            .collect();
        if events.is_empty() {
            bail!("the workload's plans have no steps");
        }
        events.truncate(count - total);
        total += events.len();
        shipments.push(ShipmentPlan {
            node: index % nodes.max(1),
            events,
        });
    }
    Ok(shipments)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use custody_contracts::ContractRules;
    use custody_ledger::block::CommitCertificate;
    use custody_ledger::chain::build_block;
    use custody_ledger::genesis::{Genesis, GenesisMember};
    use custody_ledger::model::RulesActivation;
    use custody_ledger::state::ShipmentStatus;
    use custody_ledger::store::{MemoryStore, Store};

    /// 2026-11-01T00:00:00Z.
    pub(crate) fn genesis_time() -> Timestamp {
        Timestamp::from_date(2026, 11, 1).expect("a date")
    }

    fn key(index: usize, tag: u8) -> Keypair {
        let mut seed = [tag; 32];
        seed[0] = u8::try_from(index).expect("few members");
        Keypair::from_seed(seed)
    }

    /// A network of the devnet's roster with fixed keys, the customs authority named
    /// `customs`, under rules `version`; blocks are built and judged by the contract rules
    /// and appended to a memory store, as a validator would.
    pub(crate) struct Chain {
        pub(crate) genesis: Genesis,
        pub(crate) store: MemoryStore,
        rules: ContractRules,
        keys: Vec<(String, [u8; 32])>,
        pub(crate) time: Timestamp,
    }

    impl Chain {
        pub(crate) fn new(customs: &str, version: u32) -> Chain {
            let mut members = Vec::new();
            let mut keys = Vec::new();
            for (i, spec) in crate::roster::members(4).into_iter().enumerate() {
                let id = if spec.id == CUSTOMS {
                    customs.to_owned()
                } else {
                    spec.id.clone()
                };
                let member_key = key(i, 0xC1);
                let validates = spec.node.as_ref().is_some_and(|n| n.validator);
                members.push(GenesisMember {
                    id: MemberId::new(id.clone()),
                    name: spec.name,
                    roles: spec.roles,
                    key: member_key.public(),
                    node_key: validates.then(|| key(i, 0xD2).public()),
                    voting_power: u64::from(validates),
                });
                keys.push((id, member_key.signing_key().to_bytes()));
            }
            let genesis = Genesis {
                chain_id: "custody-scenario-test".into(),
                genesis_time: genesis_time(),
                admin_quorum: crate::roster::ADMIN_QUORUM,
                members,
                rules_schedule: vec![RulesActivation {
                    version,
                    from_height: 1,
                }],
            };
            genesis.validate().expect("a valid genesis");
            Chain {
                store: MemoryStore::new(genesis.hash()),
                genesis,
                rules: ContractRules::default(),
                keys,
                time: genesis_time(),
            }
        }

        /// The cast of this network: the devnet's ids, `customs` for the authority.
        pub(crate) fn cast(&self, customs: &str) -> Cast {
            Cast::new(&self.genesis.chain_id, |part| {
                let id = match part {
                    Part::Customs => customs,
                    other => other.devnet_member(),
                };
                let seed = self
                    .keys
                    .iter()
                    .find(|(member, _)| member == id)
                    .unwrap_or_else(|| panic!("no member {id}"))
                    .1;
                (id.to_owned(), Keypair::from_seed(seed))
            })
        }

        /// Commits `events` in one block a minute after the last; every one must be accepted.
        pub(crate) fn commit(&mut self, events: Vec<EncodedEvent>) {
            self.time = Timestamp(self.time.as_millis() + 60_000);
            let proposer = self.genesis.validators()[0].key;
            let built = build_block(
                &self.store,
                &self.genesis,
                &self.rules,
                custody_ledger::testkit::verified(events),
                self.time,
                proposer,
            )
            .expect("built");
            assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
            // The store checks the chain of hashes and the log, not the votes: an empty
            // certificate is enough for the state these tests read.
            let certificate = CommitCertificate {
                height: built.block().header.height,
                round: 0,
                block_hash: built.block().hash(),
                signatures: Vec::new(),
            };
            self.store
                .append_block(&built.validated, &certificate)
                .expect("appended");
            self.rules = built.into_rules();
        }

        pub(crate) fn book(&self) -> &ReferenceBook {
            &self.rules.book
        }

        pub(crate) fn status(&self, shipment: &str) -> ShipmentStatus {
            self.store
                .shipment(&ShipmentId::new(shipment))
                .expect("read")
                .unwrap_or_else(|| panic!("no shipment {shipment}"))
                .status
        }
    }
    /// Signs the shipments' plans at `now` and commits them step by step, step `k` of every
    /// shipment in one block (as the benchmark interleaves them); returns the signed steps.
    pub(crate) fn run(
        chain: &mut Chain,
        cast: &Cast,
        shipments: &mut [Shipment<'_>],
        now: Timestamp,
    ) -> Vec<Vec<Signed>> {
        let book = chain.book().clone();
        let signed: Vec<Vec<Signed>> = shipments
            .iter_mut()
            .map(|s| s.sign_all(cast, &book, now).expect("signs"))
            .collect();
        let steps = signed.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..steps {
            chain.commit(
                signed
                    .iter()
                    .filter_map(|s| s.get(k).map(|s| s.event.clone()))
                    .collect(),
            );
        }
        signed
    }

    /// A chain with the reference data committed, and its cast.
    pub(crate) fn published(customs: &str, version: u32) -> (Chain, Cast) {
        let mut chain = Chain::new(customs, version);
        let cast = chain.cast(customs);
        let events = reference_events(&cast, chain.time);
        let book = reference_book(&events);
        chain.commit(events);
        assert_eq!(
            chain.book(),
            &book,
            "the book the rules built is the scenario's"
        );
        (chain, cast)
    }

    #[test]
    fn every_step_of_every_workload_plan_is_accepted_by_the_contract_rules() {
        // The devnet's network (newest rules) and the test kit's (its authority is
        // customs-qx, its rules version 1).
        for (customs, version) in [
            (CUSTOMS, custody_contracts::registry::LATEST_RULES_VERSION),
            ("customs-qx", 1),
        ] {
            let (mut chain, cast) = published(customs, version);
            let plans = workload_plans();
            let returned: Vec<Plan> = plans.iter().map(Plan::with_return).collect();
            let all: Vec<&Plan> = plans.iter().chain(&returned).collect();
            let mut shipments: Vec<Shipment<'_>> = all
                .iter()
                .enumerate()
                .map(|(i, plan)| Shipment::new(plan, format!("T-{i}"), 1_000 + i as u64))
                .collect();
            let now = Timestamp(chain.time.as_millis() + 1_000);
            let signed = run(&mut chain, &cast, &mut shipments, now);
            for (i, expected) in [
                ShipmentStatus::Delivered,
                ShipmentStatus::Delivered,
                ShipmentStatus::Returned,
                ShipmentStatus::Returned,
            ]
            .into_iter()
            .enumerate()
            {
                assert_eq!(chain.status(&format!("T-{i}")), expected, "{customs}");
            }
            // Something is due on every parcel (the EU parcel's flat duty and VAT, the QX
            // parcel's duty and VAT), paid by the plan's payer.
            for (plan, signed) in all.iter().zip(&signed) {
                let (index, payer) = plan
                    .steps
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| match s {
                        Step::Pay { by } => Some((i, *by)),
                        _ => None,
                    })
                    .expect("a payment");
                assert_eq!(signed[index].by, payer);
                assert!(matches!(
                    &signed[index].event.event().event.kind,
                    custody_ledger::model::EventKind::DutyPaid(p) if p.amount.amount_minor > 0
                ));
            }
            // Registration and delivery carry the personal values, disclosed with their salts.
            let disclosed: Vec<PersonalField> = signed[0]
                .iter()
                .filter_map(|s| s.disclosure.as_ref().map(|d| d.field))
                .collect();
            assert_eq!(
                disclosed,
                [PersonalField::BuyerName, PersonalField::ReceivedBy]
            );
        }
    }

    #[test]
    fn the_workload_is_exact_deterministic_spread_and_accepted() {
        let (mut chain, cast) =
            published(CUSTOMS, custody_contracts::registry::LATEST_RULES_VERSION);
        let now = Timestamp(chain.time.as_millis() + 1_000);
        let plans = workload(&cast, 64, 3, now).expect("signs");
        assert_eq!(plans.iter().map(|p| p.events.len()).sum::<usize>(), 64);
        assert!(plans.iter().enumerate().all(|(i, p)| p.node == i % 3));
        // Shipment 0 is returned (11 events), the others whole (9), the last cut short.
        assert_eq!(plans[0].events.len(), 11);
        assert_eq!(plans[1].events.len(), 9);
        assert_eq!(plans.last().map(|p| p.events.len()), Some(64 - 11 - 5 * 9));
        let ids = |plans: &[ShipmentPlan]| -> Vec<EventId> {
            plans
                .iter()
                .flat_map(|p| p.events.iter().map(|e| e.id()))
                .collect()
        };
        let mut unique = ids(&plans);
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 64, "no event twice");
        // The same cast and time sign the same events; another salt seed commits otherwise.
        assert_eq!(
            ids(&workload(&cast, 64, 3, now).expect("signs")),
            ids(&plans)
        );
        let other = chain.cast(CUSTOMS).with_salt_seed([7; 32]);
        assert_ne!(
            workload(&other, 1, 1, now).expect("signs")[0].events[0].id(),
            plans[0].events[0].id()
        );
        // Dispatched step by step, every event is accepted.
        let steps = plans.iter().map(|p| p.events.len()).max().unwrap_or(0);
        for k in 0..steps {
            chain.commit(
                plans
                    .iter()
                    .filter_map(|p| p.events.get(k).cloned())
                    .collect(),
            );
        }
        assert_eq!(
            chain.status(&format!("B-{:08x}-000000", now.as_millis() & 0xffff_ffff)),
            ShipmentStatus::Returned
        );
    }

    #[test]
    fn salts_differ_by_shipment_field_and_seed_and_steps_refuse_to_run_out_of_order() {
        let chain = Chain::new(CUSTOMS, 1);
        let cast = chain.cast(CUSTOMS);
        let salt = cast.salt("S-1", PersonalField::BuyerName);
        assert_eq!(salt, cast.salt("S-1", PersonalField::BuyerName));
        assert_ne!(salt, cast.salt("S-2", PersonalField::BuyerName));
        assert_ne!(salt, cast.salt("S-1", PersonalField::ReceivedBy));
        let seeded = chain.cast(CUSTOMS).with_salt_seed([1; 32]);
        assert_ne!(salt, seeded.salt("S-1", PersonalField::BuyerName));
        assert!(!format!("{seeded:?}").contains("salt_seed"));

        let plans = workload_plans();
        let book = reference_book(&reference_events(&cast, chain.time));
        let mut shipment = Shipment::new(&plans[0], "S-1", 1);
        let declare = plans[0]
            .steps
            .iter()
            .position(|s| *s == Step::Declare)
            .expect("a declaration");
        let early = shipment
            .sign(&cast, &book, declare, chain.time)
            .unwrap_err();
        assert!(early.to_string().contains("before registered"), "{early}");
        let accept = shipment.sign(&cast, &book, 2, chain.time).unwrap_err();
        assert!(accept.to_string().contains("without an offer"), "{accept}");
        assert!(shipment.sign(&cast, &book, 99, chain.time).is_err());
    }
}
