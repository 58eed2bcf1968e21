//! The demo: the customs authority publishes the reference data, then four cross-border
//! shipments run through the SDK, each member submitting to its own organisation's node, and
//! each step is told as it commits.
//!
//! - **Paris, DDP, low value.** Two cotton T-shirts worth €150 from Shenzhen to a buyer in
//!   Paris. At checkout, before the shipment exists, the seller asks the node for a quote
//!   (`POST /v1/quote`): what will this parcel cost the buyer? Within the EU's €150 threshold, so no tariff duty, but the EU's flat duty per item
//!   category (from 2026-07-01) and French import VAT, paid by the seller under DDP; released
//!   and delivered.
//! - **QY, DAP, through a bonded warehouse.** A handbag and a laptop to the fictional sample
//!   jurisdiction QY (FOB valuation, freight deducted, a 7 % sales tax in US dollars); the
//!   broker takes custody at the port, pays as the buyer's agent, and hands the released
//!   parcel to the last-mile carrier, which delivers it.
//! - **QX, FOB, held.** Boots and a dinner set to the sample jurisdiction QX (CIF valuation:
//!   freight and insurance added); customs holds it until the duty is paid and the seller
//!   attests the certificate of origin, then releases it.
//! - **Lyon, DAP, returned.** A laptop and two T-shirts invoiced in US dollars, declared in
//!   France in euros at a stated exchange rate with the real French rates; delivered, then one
//!   T-shirt comes back under an RMA.
//!
//! Declarations are filled in with `custody_contracts::customs::assess` against the reference
//! book built from the node's own published tables, so every amount is the one the
//! validators compute.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use custody_client::build::Signer;
use custody_client::personal::new_salt;
use custody_client::timeline::money;
use custody_client::Client;
use custody_contracts::ReferenceBook;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::personal::{commitment, Disclosure, PersonalField};
use custody_ledger::state::ShipmentState;
use custody_ledger::Digest;
use serde::{Deserialize, Serialize};

use crate::documents::{self, awb, party, Choices, Goods, Sale};
use crate::network::Endpoint;
use crate::reference;
use crate::roster::{AUDITOR, BROKER, CARRIER, CUSTOMS, LASTMILE, SELLER};
use crate::setup::{self, Devnet};
use crate::submit;

/// How long a node may take to catch up with a height another node committed.
const CATCH_UP_TIMEOUT_MS: u64 = 60_000;

/// What a demo run did, written to `demo.json` for scripts and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoRecord {
    /// The chain id.
    pub chain_id: String,
    /// The run's tag, part of every shipment id.
    pub run: String,
    /// The highest block a demo event was committed in.
    pub height: u64,
    /// The shipments.
    pub shipments: Vec<ShipmentRecord>,
}

/// A demo shipment and where it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// Its id.
    pub id: String,
    /// What it is, for people.
    pub title: String,
    /// Origin and destination.
    pub route: String,
    /// The status it reached (as the API spells it).
    pub status: String,
    /// Events committed about it.
    pub events: u64,
    /// Duty and tax paid, for people.
    pub paid: String,
    /// The block its last event was committed in.
    pub height: u64,
}

/// A member acting through its organisation's node.
#[derive(Debug)]
struct Actor {
    member: &'static str,
    signer: Signer,
    client: Client,
}

/// Every member the demo needs.
#[derive(Debug)]
struct Cast {
    seller: Actor,
    carrier: Actor,
    lastmile: Actor,
    broker: Actor,
    customs: Actor,
    /// The carrier's EPCIS capture gateway, when its node has one (devnets created before
    /// the gateway existed do not).
    gateway: Option<Gateway>,
}

/// Where the carrier's hub systems post their EPCIS documents.
struct Gateway {
    url: String,
    token: String,
}

impl std::fmt::Debug for Gateway {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("url", &self.url).finish()
    }
}

impl Cast {
    fn new(devnet: &Devnet, endpoints: &[Endpoint]) -> anyhow::Result<Cast> {
        let actor = |member: &'static str, node_member: &str| -> anyhow::Result<Actor> {
            let endpoint = endpoints
                .iter()
                .find(|e| e.member == node_member)
                .ok_or_else(|| anyhow!("no running node of {node_member}"))?;
            Ok(Actor {
                member,
                signer: devnet.signer(member)?,
                client: endpoint.client()?,
            })
        };
        Ok(Cast {
            seller: actor(SELLER, SELLER)?,
            carrier: actor(CARRIER, CARRIER)?,
            // The last-mile carrier runs no node; it submits through its partner's.
            lastmile: actor(LASTMILE, CARRIER)?,
            broker: actor(BROKER, BROKER)?,
            customs: actor(CUSTOMS, CUSTOMS)?,
            gateway: gateway(devnet, endpoints),
        })
    }
}

/// The carrier's node and the token of its capture gateway, if it has one.
fn gateway(devnet: &Devnet, endpoints: &[Endpoint]) -> Option<Gateway> {
    let node = devnet.node_of(CARRIER)?;
    let config = node.config.epcis_gateway.as_ref()?;
    let endpoint = endpoints.iter().find(|e| e.member == CARRIER)?;
    Some(Gateway {
        url: endpoint.url.clone(),
        token: config.api_token.clone(),
    })
}

/// One shipment's progress: the height its last event committed at, so the next actor's
/// node is waited for until it has seen it.
#[derive(Debug)]
struct Track {
    id: String,
    height: u64,
    events: u64,
    /// The personal data committed in this shipment's events, with the salts: kept off the
    /// ledger by the parties, who disclose it to their nodes.
    disclosures: Vec<Disclosure>,
}

/// The time of day, UTC, for the story.
fn clock() -> String {
    setup::now().to_rfc3339()[11..19].to_owned()
}

impl Track {
    fn new(id: String) -> Track {
        Track {
            id,
            height: 0,
            events: 0,
            disclosures: Vec::new(),
        }
    }

    fn shipment_id(&self) -> ShipmentId {
        ShipmentId::new(self.id.clone())
    }

    /// `actor` gives its node the latest personal value of this shipment (the value and its
    /// salt), signed with its member key: the node keeps it off the ledger and shares it only
    /// with the nodes of the shipment's parties.
    async fn disclose_latest(&self, actor: &Actor, what: &str) -> anyhow::Result<()> {
        let Some(disclosure) = self.disclosures.last().cloned() else {
            return Ok(());
        };
        let stored = actor
            .client
            .disclose(&actor.signer.key, &self.shipment_id(), vec![disclosure])
            .await
            .with_context(|| format!("{} could not give its node {what}", actor.member))?;
        println!(
            "{} {:<17} gave its node {what} of {}, off the ledger ({} value(s) held there)",
            clock(),
            actor.member,
            self.id,
            stored.held
        );
        Ok(())
    }

    /// Submits `event` through `actor`'s node once that node has seen this shipment's last
    /// event, waits for its commit and tells `story`.
    async fn step(
        &mut self,
        actor: &Actor,
        event: EncodedEvent,
        story: String,
    ) -> anyhow::Result<u64> {
        submit::wait_height(
            &actor.client,
            self.height,
            Duration::from_millis(CATCH_UP_TIMEOUT_MS),
        )
        .await?;
        let height = submit::committed(&actor.client, &event)
            .await
            .with_context(|| format!("{} could not record: {story}", actor.member))?;
        self.height = height;
        self.events += 1;
        println!("{} {:<17} {story} — block {height}", clock(), actor.member);
        Ok(height)
    }

    /// The carrier's hub systems post tracking scans of `parcels` to its node's EPCIS capture
    /// gateway (one EPCIS document, one `ObjectEvent` per leg); the gateway signs them as the
    /// carrier. Then anyone reads them back with an EPCIS query. Skipped, and said so, on a
    /// devnet whose carrier node has no gateway.
    async fn scans(
        &mut self,
        cast: &Cast,
        parcels: &[String],
        legs: &[(&str, &str, &str)],
    ) -> anyhow::Result<()> {
        let Some(gateway) = &cast.gateway else {
            println!(
                "{} (this devnet's carrier node has no EPCIS gateway: no scans)",
                clock()
            );
            return Ok(());
        };
        submit::wait_height(
            &cast.carrier.client,
            self.height,
            Duration::from_millis(CATCH_UP_TIMEOUT_MS),
        )
        .await?;
        let document = scan_document(&self.id, parcels, legs);
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{}/epcis/capture", gateway.url))
            .bearer_auth(&gateway.token)
            .header("content-type", "application/ld+json")
            .json(&document)
            .send()
            .await?;
        let status = response.status();
        let job: serde_json::Value = response.json().await?;
        if status != reqwest::StatusCode::ACCEPTED || job["success"] != true {
            anyhow::bail!("the EPCIS capture was refused ({status}): {job}");
        }
        let ids: Vec<&str> = job["custody:events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["eventId"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            let id = Digest::from_hex(id).map_err(|e| anyhow!("event id {id}: {e}"))?;
            let height = submit::wait_committed(
                &cast.carrier.client,
                &id,
                Duration::from_millis(CATCH_UP_TIMEOUT_MS),
            )
            .await?;
            self.height = self.height.max(height);
            self.events += 1;
        }
        let steps: Vec<String> = legs
            .iter()
            .map(|(step, _, place)| format!("{step} {place}"))
            .collect();
        println!(
            "{} {:<17} hub systems posted {} EPCIS scans to its gateway ({}), job {} — block {}",
            clock(),
            CARRIER,
            ids.len(),
            steps.join(", "),
            job["captureID"].as_str().unwrap_or("?"),
            self.height
        );
        let epc = format!("https://id.gs1.org/00/{}", parcels[0]);
        let query: serde_json::Value = http
            .get(format!("{}/epcis/events", gateway.url))
            .query(&[("MATCH_epc", epc.as_str()), ("eventType", "ObjectEvent")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let found = query["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "{} {:<17} GET /epcis/events?MATCH_epc={epc}&eventType=ObjectEvent: {found} events",
            clock(),
            "anyone"
        );
        Ok(())
    }

    /// The shipment as `actor`'s node holds it after this shipment's last event.
    async fn state(&self, actor: &Actor) -> anyhow::Result<ShipmentState> {
        self.state_via(&actor.client).await
    }

    /// `from` hands the shipment to `to` at `place`; `to` accepts.
    async fn handoff(
        &mut self,
        from: &Actor,
        to: &Actor,
        place: &str,
        waybill: Option<&str>,
        story: (&str, &str),
    ) -> anyhow::Result<()> {
        let proposal = from.signer.propose_handoff(
            HandoffProposed {
                shipment_id: self.shipment_id(),
                to: MemberId::new(to.member),
                place: place.into(),
                transport_document: waybill.map(|number| TransportDocument {
                    kind: TransportDocumentKind::AirWaybill,
                    number: number.into(),
                }),
            },
            setup::now(),
        );
        self.step(from, proposal.clone(), story.0.to_owned())
            .await?;
        let acceptance = to.signer.accept_handoff(
            HandoffAccepted {
                shipment_id: self.shipment_id(),
                proposal: proposal.id,
            },
            setup::now(),
        );
        self.step(to, acceptance, story.1.to_owned()).await?;
        Ok(())
    }

    /// The broker declares with `choices` (amounts assessed against `book`); returns the
    /// event and the declaration.
    async fn declare(
        &mut self,
        cast: &Cast,
        book: &ReferenceBook,
        choices: Choices,
    ) -> anyhow::Result<(EncodedEvent, CustomsDeclared)> {
        let state = self.state(&cast.broker).await?;
        let decl = documents::declaration(book, setup::now(), &state, &choices)?;
        let event = cast.broker.signer.declare(decl.clone(), setup::now());
        let story = format!(
            "declared {} in {} ({}): customs value {}, duty {}, {} {}",
            self.id,
            decl.jurisdiction,
            regime_text(&decl),
            money(decl.customs_value_minor, decl.currency),
            money(decl.duty_total_minor, decl.currency),
            tax_name(&decl),
            money(decl.tax_total_minor, decl.currency),
        );
        self.step(&cast.broker, event.clone(), story).await?;
        Ok((event, decl))
    }

    /// `payer` pays what `decl` assesses.
    async fn pay(
        &mut self,
        payer: &Actor,
        declaration: &EncodedEvent,
        decl: &CustomsDeclared,
        why: &str,
    ) -> anyhow::Result<()> {
        let amount = decl.duty_total_minor + decl.tax_total_minor;
        let event = payer.signer.pay_duty(
            DutyPaid {
                shipment_id: self.shipment_id(),
                declaration: declaration.id,
                amount: Money {
                    amount_minor: amount,
                    currency: decl.currency,
                },
                payment_reference: format!("PAY-{}", self.id),
            },
            setup::now(),
        );
        let story = format!(
            "paid {} of duty and {} for {} ({why})",
            money(amount, decl.currency),
            tax_name(decl),
            self.id
        );
        self.step(payer, event, story).await?;
        Ok(())
    }

    /// The broker records the authority's decision.
    async fn clear(
        &mut self,
        broker: &Actor,
        declaration: &EncodedEvent,
        outcome: ClearanceOutcome,
        reason: &str,
        story: String,
    ) -> anyhow::Result<()> {
        let event = broker.signer.clear(
            CustomsCleared {
                shipment_id: self.shipment_id(),
                declaration: declaration.id,
                outcome,
                authority_reference: format!("AUTH-{}-{}", self.id, self.events),
                reason: reason.into(),
            },
            setup::now(),
        );
        self.step(broker, event, story).await?;
        Ok(())
    }

    /// The custodian carrier delivers.
    async fn deliver(
        &mut self,
        carrier: &Actor,
        place: &str,
        proof_kind: ProofKind,
        received_by: &str,
    ) -> anyhow::Result<()> {
        let proof = format!("{proof_kind:?} of {received_by} for {}", self.id);
        let salt = new_salt();
        let event = carrier.signer.deliver(
            Delivered {
                shipment_id: self.shipment_id(),
                place: place.into(),
                proof_kind,
                proof_hash: Digest::sha256(proof.as_bytes()),
                received_by_commitment: commitment(received_by, &salt),
            },
            setup::now(),
        );
        self.disclosures.push(Disclosure::new(
            event.id,
            PersonalField::ReceivedBy,
            received_by,
            salt,
        ));
        let story = format!(
            "delivered {} at {place}, receiver's name committed ({} proof hashed on the ledger)",
            self.id,
            match proof_kind {
                ProofKind::Signature => "signature",
                ProofKind::Photo => "photo",
                ProofKind::OneTimeCode => "one-time code",
            }
        );
        self.step(carrier, event, story).await?;
        self.disclose_latest(carrier, "the receiver's name").await?;
        Ok(())
    }

    /// The shipment's record, with its status as the node of `client` holds it.
    async fn finish(
        &self,
        client: &Client,
        title: String,
        route: String,
        paid: String,
    ) -> anyhow::Result<ShipmentRecord> {
        let state = self.state_via(client).await?;
        // The names and salts behind this shipment's commitments, held off the ledger.
        let disclosures = &self.disclosures;
        println!(
            "{} {:<17} {} personal value(s) of {} kept off the ledger with their salts",
            clock(),
            "",
            disclosures.len(),
            self.id
        );
        Ok(ShipmentRecord {
            id: self.id.clone(),
            title,
            route,
            status: state.status.as_str().to_owned(),
            events: self.events,
            paid,
            height: self.height,
        })
    }

    /// The shipment as the node of `client` holds it after this shipment's last event.
    async fn state_via(&self, client: &Client) -> anyhow::Result<ShipmentState> {
        submit::wait_height(
            client,
            self.height,
            Duration::from_millis(CATCH_UP_TIMEOUT_MS),
        )
        .await?;
        Ok(client.shipment(&self.shipment_id()).await?)
    }
}

fn regime_text(decl: &CustomsDeclared) -> String {
    match &decl.regime {
        CustomsRegime::Full => "full regime".into(),
        CustomsRegime::DeMinimisRelief if decl.duty_total_minor > 0 => {
            "low-value relief, flat duty per item category".into()
        }
        CustomsRegime::DeMinimisRelief => "low-value relief".into(),
        CustomsRegime::TaxCollectedAtSale { registration_id } => {
            format!("tax collected at sale under {registration_id}")
        }
    }
}

fn tax_name(decl: &CustomsDeclared) -> &'static str {
    match decl.jurisdiction.as_str() {
        "QY" => "sales tax",
        "AU" | "CA" => "GST",
        _ => "VAT",
    }
}

/// The draft a seller's checkout sends for a quote: the goods of a sale, with the
/// destination's tariff codes, by courier.
fn draft(
    sale: &Sale,
    goods: &[Goods],
    tariff_codes: &[&str],
) -> custody_ledger::view::QuoteRequest {
    let country = |c: &str| CountryCode::parse(c).expect("the demo's countries are valid");
    custody_ledger::view::QuoteRequest {
        origin: country(sale.origin),
        destination: country(sale.destination),
        incoterm: sale.incoterm,
        transport_mode: TransportMode::Courier,
        currency: CurrencyCode::parse(sale.currency).expect("the demo's currencies are valid"),
        lines: goods
            .iter()
            .zip(tariff_codes)
            .map(|(g, code)| custody_ledger::view::QuoteLine {
                description: g.description.into(),
                hs_code: g.hs_code.into(),
                tariff_code: Some((*code).into()),
                quantity: g.quantity,
                unit: g.unit.into(),
                unit_value_minor: g.unit_value_minor,
                net_weight_grams: g.net_weight_grams,
                origin_country: country(sale.origin),
            })
            .collect(),
        freight_minor: sale.freight_minor,
        insurance_minor: sale.insurance_minor,
        seller_registrations: sale.seller.tax_ids.clone(),
        exchange_rate: None,
        at: None,
    }
}

/// A quote in one line, for people.
fn quote_text(q: &custody_ledger::view::Quote) -> String {
    let regime = match &q.regime.regime {
        CustomsRegime::Full => "full declaration",
        CustomsRegime::DeMinimisRelief => "low-value relief",
        CustomsRegime::TaxCollectedAtSale { .. } => "tax collected at sale",
    };
    format!(
        "asked what the parcel will cost the buyer: {} in {} (goods {} against a threshold of \
         {}), duty {}, import tax {}, landed cost {}; {} pays duty and tax under {:?}",
        regime,
        q.jurisdiction,
        money(q.regime.compared_minor, q.currency),
        q.regime
            .duty_free_max_minor
            .map_or_else(|| "none".to_owned(), |m| money(m, q.currency)),
        money(q.duty_total_minor, q.currency),
        money(q.tax_total_minor, q.currency),
        money(q.landed_cost_minor, q.currency),
        q.payer.duty_and_tax,
        q.payer.incoterm,
    )
}

/// Registers a shipment and tells it.
async fn register(
    track: &mut Track,
    seller: &Actor,
    sale: &Sale,
    goods: &[Goods],
    serial: u64,
    summary: &str,
) -> anyhow::Result<Vec<String>> {
    let salt = new_salt();
    let payload = documents::registration(&track.id, sale, goods, serial, setup::now(), &salt);
    let parcels: Vec<String> = payload.parcels.iter().map(|p| p.sscc.clone()).collect();
    let total = money(payload.invoice.total_minor, payload.invoice.currency);
    let event = seller.signer.register(payload, setup::now());
    track.disclosures.push(Disclosure::new(
        event.id,
        PersonalField::BuyerName,
        sale.buyer.name.as_str(),
        salt,
    ));
    let story = format!(
        "registered {} ({summary}, {total} {} {}, {}→{}, buyer name committed)",
        track.id,
        sale.incoterm.code(),
        sale.incoterm_place,
        sale.origin,
        sale.destination
    );
    track.step(seller, event, story).await?;
    track.disclose_latest(seller, "the buyer's name").await?;
    Ok(parcels)
}

/// An EPCIS 2.0 document of tracking scans, as a carrier's hub system writes it: one
/// `ObjectEvent` (action `OBSERVE`) per leg `(bizStep, disposition, UN/LOCODE)`, the parcels as
/// GS1 Digital Link SSCCs, places in Custody's UN/LOCODE URI form, and the shipment named in
/// Custody's extension (docs/EPCIS.md).
fn scan_document(
    shipment: &str,
    parcels: &[String],
    legs: &[(&str, &str, &str)],
) -> serde_json::Value {
    let time = setup::now().to_rfc3339();
    let epcs: Vec<String> = parcels
        .iter()
        .map(|sscc| format!("https://id.gs1.org/00/{sscc}"))
        .collect();
    let events: Vec<serde_json::Value> = legs
        .iter()
        .map(|(step, disposition, place)| {
            serde_json::json!({
                "type": "ObjectEvent",
                "eventTime": time,
                "eventTimeZoneOffset": "+00:00",
                "epcList": epcs,
                "action": "OBSERVE",
                "bizStep": step,
                "disposition": disposition,
                "readPoint": {"id": format!("urn:custody:locode:{place}")},
                "bizLocation": {"id": format!("urn:custody:locode:{place}")},
                "custody:shipmentId": shipment
            })
        })
        .collect();
    serde_json::json!({
        "@context": [
            "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
            {"custody": "urn:custody:epcis:"}
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": time,
        "epcisBody": {"eventList": events}
    })
}

/// (a) Two T-shirts, €150, DDP Paris: low-value relief with the flat duty, VAT paid by the
/// seller; released and delivered.
async fn paris(
    cast: &Cast,
    book: &ReferenceBook,
    run: &str,
    serial: u64,
) -> anyhow::Result<ShipmentRecord> {
    let mut t = Track::new(format!("SHP-{run}-PAR"));
    let (sale, goods) = documents::paris_parcel();
    // Before the sale, at checkout: what will this parcel cost the buyer?
    let quote = cast
        .seller
        .client
        .quote(&draft(&sale, &goods, &["61091000"]))
        .await
        .context("quoting the Paris parcel")?;
    println!(
        "{} {:<17} {}",
        clock(),
        cast.seller.member,
        quote_text(&quote)
    );
    let parcels = register(
        &mut t,
        &cast.seller,
        &sale,
        &goods,
        serial,
        "2 cotton T-shirts",
    )
    .await?;
    let waybill = awb(serial);
    t.handoff(
        &cast.seller,
        &cast.carrier,
        "CNSZX",
        Some(&waybill),
        (
            &format!(
                "offered {} to carrier-swift at Shenzhen (CNSZX), air waybill {waybill}",
                t.id
            ),
            &format!("took custody of {} at CNSZX", t.id),
        ),
    )
    .await?;
    t.scans(
        cast,
        &parcels,
        &[
            ("departing", "in_transit", "CNSZX"),
            ("arriving", "in_transit", "FRCDG"),
        ],
    )
    .await?;
    t.handoff(
        &cast.carrier,
        &cast.lastmile,
        "FRCDG",
        Some(&waybill),
        (
            &format!(
                "flew {} to Paris-Charles de Gaulle (FRCDG), offered it to carrier-lastmile",
                t.id
            ),
            &format!(
                "took custody of {} at FRCDG: the parcel has arrived in France",
                t.id
            ),
        ),
    )
    .await?;
    let (declaration, decl) = t
        .declare(
            cast,
            book,
            Choices {
                reference: format!("DEC-{}", t.id),
                jurisdiction: "FR",
                currency: "EUR",
                exchange_rate: None,
                regime: CustomsRegime::DeMinimisRelief,
                hs_codes: vec!["61091000"],
            },
        )
        .await?;
    let as_quoted = (decl.duty_total_minor, decl.tax_total_minor)
        == (quote.duty_total_minor, quote.tax_total_minor);
    t.pay(
        &cast.seller,
        &declaration,
        &decl,
        if as_quoted {
            "DDP: the seller pays, as quoted at checkout"
        } else {
            "DDP: the seller pays (the reference data changed since the quote)"
        },
    )
    .await?;
    t.clear(
        &cast.broker,
        &declaration,
        ClearanceOutcome::Release,
        "",
        format!("recorded French customs' release of {}", t.id),
    )
    .await?;
    t.deliver(&cast.lastmile, "FRPAR", ProofKind::Photo, "C. Martin")
        .await?;
    let paid = money(decl.duty_total_minor + decl.tax_total_minor, decl.currency);
    t.finish(
        &cast.seller.client,
        "2 cotton T-shirts, 150.00 EUR, DDP Paris (EU low-value regime)".into(),
        "CN→FR".into(),
        paid,
    )
    .await
}

/// (b) A handbag and a laptop to the sample jurisdiction QY, DAP: the broker takes custody at
/// the port, pays as the buyer's agent, hands the released parcel to the last mile.
async fn quill(
    cast: &Cast,
    book: &ReferenceBook,
    run: &str,
    serial: u64,
) -> anyhow::Result<ShipmentRecord> {
    let mut t = Track::new(format!("SHP-{run}-QY"));
    let sale = Sale {
        origin: "CN",
        destination: "QY",
        incoterm: Incoterm::DAP,
        incoterm_place: "Port Quill, QY",
        currency: "USD",
        seller: documents::acme(),
        buyer: party("Quill Outfitters Ltd.", "QY"),
        freight_minor: 4_500,
        insurance_minor: 800,
    };
    let goods = [
        Goods {
            description: "Leather handbag",
            hs_code: "4202.21",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 18_000,
            net_weight_grams: 900,
        },
        Goods {
            description: "Portable computer, 14-inch",
            hs_code: "8471.30",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 65_000,
            net_weight_grams: 1_400,
        },
    ];
    register(
        &mut t,
        &cast.seller,
        &sale,
        &goods,
        serial,
        "a handbag and a laptop",
    )
    .await?;
    let waybill = awb(serial);
    t.handoff(
        &cast.seller,
        &cast.carrier,
        "CNSHA",
        Some(&waybill),
        (
            &format!(
                "offered {} to carrier-swift at Shanghai (CNSHA), air waybill {waybill}",
                t.id
            ),
            &format!("took custody of {} at CNSHA", t.id),
        ),
    )
    .await?;
    t.handoff(
        &cast.carrier,
        &cast.broker,
        "QYPRT",
        None,
        (
            &format!(
                "landed {} at Port Quill (QYPRT), offered it to broker-clear's bonded warehouse",
                t.id
            ),
            &format!("took custody of {} in its bonded warehouse at QYPRT", t.id),
        ),
    )
    .await?;
    let (declaration, decl) = t
        .declare(
            cast,
            book,
            Choices {
                reference: format!("DEC-{}", t.id),
                jurisdiction: "QY",
                currency: "USD",
                exchange_rate: None,
                regime: CustomsRegime::Full,
                hs_codes: vec!["420221", "847130"],
            },
        )
        .await?;
    t.pay(
        &cast.broker,
        &declaration,
        &decl,
        "DAP: the buyer's broker pays as agent",
    )
    .await?;
    t.clear(
        &cast.broker,
        &declaration,
        ClearanceOutcome::Release,
        "",
        format!("recorded QY customs' release of {} (SAMPLE tariff)", t.id),
    )
    .await?;
    t.handoff(
        &cast.broker,
        &cast.lastmile,
        "QYPRT",
        None,
        (
            &format!(
                "released {} from the bonded warehouse to carrier-lastmile",
                t.id
            ),
            &format!("took {} out for delivery", t.id),
        ),
    )
    .await?;
    t.deliver(&cast.lastmile, "QYQCT", ProofKind::Signature, "R. Quill")
        .await?;
    let paid = money(decl.duty_total_minor + decl.tax_total_minor, decl.currency);
    t.finish(
        &cast.broker.client,
        "a handbag and a laptop, 830.00 USD, DAP Port Quill (SAMPLE jurisdiction)".into(),
        "CN→QY".into(),
        paid,
    )
    .await
}

/// (c) Boots and a dinner set to the sample jurisdiction QX, FOB: held until the duty is paid
/// and the certificate of origin attested, then released.
async fn held(
    cast: &Cast,
    book: &ReferenceBook,
    run: &str,
    serial: u64,
) -> anyhow::Result<ShipmentRecord> {
    let mut t = Track::new(format!("SHP-{run}-QX"));
    let (sale, goods) = documents::qx_parcel();
    register(
        &mut t,
        &cast.seller,
        &sale,
        &goods,
        serial,
        "2 pairs of boots and a dinner set",
    )
    .await?;
    let waybill = awb(serial);
    t.handoff(
        &cast.seller,
        &cast.carrier,
        "CNSHA",
        Some(&waybill),
        (
            &format!(
                "offered {} to carrier-swift at Shanghai (CNSHA), air waybill {waybill}",
                t.id
            ),
            &format!(
                "took custody of {} at CNSHA (FOB: the buyer's risk from here)",
                t.id
            ),
        ),
    )
    .await?;
    t.handoff(
        &cast.carrier,
        &cast.lastmile,
        "QXAPT",
        Some(&waybill),
        (
            &format!("landed {} at QXAPT, offered it to carrier-lastmile", t.id),
            &format!("took custody of {} at QXAPT: arrived in QX", t.id),
        ),
    )
    .await?;
    let (declaration, decl) = t
        .declare(
            cast,
            book,
            Choices {
                reference: format!("DEC-{}", t.id),
                jurisdiction: "QX",
                currency: "EUR",
                exchange_rate: None,
                regime: CustomsRegime::Full,
                hs_codes: vec!["640399", "691200"],
            },
        )
        .await?;
    t.clear(
        &cast.broker,
        &declaration,
        ClearanceOutcome::Hold,
        "duty and VAT unpaid; certificate of origin requested",
        format!(
            "recorded that QX customs HOLDS {}: duty unpaid, origin to be proven",
            t.id
        ),
    )
    .await?;
    let certificate = format!("certificate of origin for {}", t.id);
    let attested = cast.seller.signer.attest_document(
        DocumentAttested {
            shipment_id: t.shipment_id(),
            document_type: "certificate_of_origin".into(),
            document_hash: Digest::sha256(certificate.as_bytes()),
            reference: format!("CO-{}", t.id),
        },
        setup::now(),
    );
    t.step(
        &cast.seller,
        attested,
        format!(
            "attested the certificate of origin of {} (its hash, on the ledger)",
            t.id
        ),
    )
    .await?;
    t.pay(
        &cast.broker,
        &declaration,
        &decl,
        "FOB: the buyer's broker pays as agent",
    )
    .await?;
    t.clear(
        &cast.broker,
        &declaration,
        ClearanceOutcome::Release,
        "",
        format!("recorded QX customs' release of {} after payment", t.id),
    )
    .await?;
    let paid = money(decl.duty_total_minor + decl.tax_total_minor, decl.currency);
    t.finish(
        &cast.broker.client,
        "boots and a dinner set, 242.00 EUR, FOB Shanghai, held then released (SAMPLE jurisdiction)".into(),
        "CN→QX".into(),
        paid,
    )
    .await
}

/// (d) A laptop and two T-shirts in US dollars to Lyon, DAP, declared in euros; delivered,
/// then one T-shirt returned.
async fn lyon(
    cast: &Cast,
    book: &ReferenceBook,
    run: &str,
    serial: u64,
) -> anyhow::Result<ShipmentRecord> {
    let mut t = Track::new(format!("SHP-{run}-LYS"));
    let sale = Sale {
        origin: "CN",
        destination: "FR",
        incoterm: Incoterm::DAP,
        incoterm_place: "Lyon",
        currency: "USD",
        seller: documents::acme(),
        buyer: party("Louis Bernard", "FR"),
        freight_minor: 2_500,
        insurance_minor: 0,
    };
    let goods = [
        Goods {
            description: "Portable computer, 14-inch",
            hs_code: "8471.30",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 94_900,
            net_weight_grams: 1_400,
        },
        Goods {
            description: "Cotton T-shirt",
            hs_code: "6109.10",
            quantity: 2,
            unit: "PCE",
            unit_value_minor: 2_450,
            net_weight_grams: 360,
        },
    ];
    register(
        &mut t,
        &cast.seller,
        &sale,
        &goods,
        serial,
        "a laptop and 2 T-shirts",
    )
    .await?;
    let waybill = awb(serial);
    t.handoff(
        &cast.seller,
        &cast.carrier,
        "CNSZX",
        Some(&waybill),
        (
            &format!(
                "offered {} to carrier-swift at Shenzhen (CNSZX), air waybill {waybill}",
                t.id
            ),
            &format!("took custody of {} at CNSZX", t.id),
        ),
    )
    .await?;
    t.handoff(
        &cast.carrier,
        &cast.lastmile,
        "FRLIO",
        Some(&waybill),
        (
            &format!(
                "flew {} to Lyon (FRLIO), offered it to carrier-lastmile",
                t.id
            ),
            &format!("took custody of {} at FRLIO: arrived in France", t.id),
        ),
    )
    .await?;
    // The rate is the declaration's own choice, stated exactly as a fraction; it is
    // illustrative, not an official customs rate.
    let rate = ExchangeRate {
        from: documents::currency("USD"),
        to: documents::currency("EUR"),
        numerator: 8_571,
        denominator: 10_000,
    };
    let (declaration, decl) = t
        .declare(
            cast,
            book,
            Choices {
                reference: format!("DEC-{}", t.id),
                jurisdiction: "FR",
                currency: "EUR",
                exchange_rate: Some(rate),
                regime: CustomsRegime::Full,
                hs_codes: vec!["84713000", "61091000"],
            },
        )
        .await?;
    t.pay(
        &cast.broker,
        &declaration,
        &decl,
        "DAP: the buyer's broker pays as agent",
    )
    .await?;
    t.clear(
        &cast.broker,
        &declaration,
        ClearanceOutcome::Release,
        "",
        format!("recorded French customs' release of {}", t.id),
    )
    .await?;
    t.deliver(&cast.lastmile, "FRLIO", ProofKind::Signature, "L. Bernard")
        .await?;
    let rma = format!("RMA-{}", t.id);
    let request = cast.seller.signer.request_return(
        ReturnRequested {
            shipment_id: t.shipment_id(),
            rma: rma.clone(),
            lines: vec![LineQuantity {
                invoice_line: 2,
                quantity: 1,
            }],
            reason: "wrong size".into(),
        },
        setup::now(),
    );
    t.step(
        &cast.seller,
        request,
        format!(
            "authorised the return of 1 T-shirt of {} ({rma}: wrong size)",
            t.id
        ),
    )
    .await?;
    let received = cast.seller.signer.receive_return(
        ReturnReceived {
            shipment_id: t.shipment_id(),
            rma: rma.clone(),
            lines: vec![ReturnedLine {
                invoice_line: 2,
                quantity: 1,
                disposition: Disposition::Resellable,
            }],
        },
        setup::now(),
    );
    t.step(
        &cast.seller,
        received,
        format!(
            "received the T-shirt of {} back under {rma}: resellable",
            t.id
        ),
    )
    .await?;
    let paid = money(decl.duty_total_minor + decl.tax_total_minor, decl.currency);
    t.finish(
        &cast.seller.client,
        "a laptop and 2 T-shirts, 998.00 USD, DAP Lyon, declared in EUR; 1 T-shirt returned".into(),
        "CN→FR".into(),
        paid,
    )
    .await
}

/// Runs the demo against the running nodes of `devnet`: publishes the reference data, runs
/// the four shipments at once, prints the story and a summary, and writes `demo.json`.
pub async fn run(devnet: &Devnet, endpoints: &[Endpoint]) -> anyhow::Result<DemoRecord> {
    let cast = Cast::new(devnet, endpoints)?;
    println!();
    println!("Demo: the customs authority publishes the reference data, then four shipments.");
    let published = reference::ensure_published(
        &cast.customs.client,
        &cast.customs.signer,
        |table, height| match height {
            Some(h) => println!(
                "{} {:<17} published {} — block {h}",
                clock(),
                CUSTOMS,
                reference::describe(table)
            ),
            None => println!(
                "{} {:<17} already published: {}",
                clock(),
                CUSTOMS,
                reference::describe(table)
            ),
        },
    )
    .await?;
    let book = reference::load_book_at(&cast.broker.client, published).await?;
    let now = setup::now();
    let run = now.to_rfc3339();
    // MMDD-HHMMSS of the start: shipment ids unique across runs on one chain.
    let run = format!(
        "{}{}-{}{}{}",
        &run[5..7],
        &run[8..10],
        &run[11..13],
        &run[14..16],
        &run[17..19]
    );
    // Parcel and waybill serials from the clock, distinct per shipment.
    let serial = now.as_millis() % 1_000_000_000;
    let (a, b, c, d) = tokio::try_join!(
        paris(&cast, &book, &run, serial),
        quill(&cast, &book, &run, serial + 1),
        held(&cast, &book, &run, serial + 2),
        lyon(&cast, &book, &run, serial + 3),
    )?;
    let shipments = vec![a, b, c, d];
    let height = shipments
        .iter()
        .map(|s| s.height)
        .max()
        .unwrap_or(published);
    let record = DemoRecord {
        chain_id: devnet.genesis.chain_id.clone(),
        run,
        height,
        shipments,
    };
    for shipment in &record.shipments {
        let holders = personal_holders(&cast, endpoints, &shipment.id).await;
        println!(
            "{} {:<17} the buyer's name of {} is held off the ledger by {holders} party node(s); \
             the ledger holds only its commitment",
            clock(),
            "",
            shipment.id
        );
    }
    let path = devnet.layout.demo();
    std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    print_summary(devnet, endpoints, &record);
    Ok(record)
}

/// How many nodes answer the seller's signed read of a shipment's personal data with some
/// value: the parties' nodes that hold it (the others refuse the read, or hold nothing).
async fn personal_holders(cast: &Cast, endpoints: &[Endpoint], shipment: &str) -> usize {
    let id = ShipmentId::new(shipment);
    let mut holders = 0;
    for endpoint in endpoints {
        let Ok(client) = endpoint.client() else {
            continue;
        };
        if let Ok(view) = client.personal(&cast.seller.signer.key, &id).await {
            holders += usize::from(!view.disclosures.is_empty());
        }
    }
    holders
}

fn print_summary(devnet: &Devnet, endpoints: &[Endpoint], record: &DemoRecord) {
    let events: u64 = record.shipments.iter().map(|s| s.events).sum();
    println!();
    println!(
        "Demo done: {} shipments, {events} custody events, chain at block {}.",
        record.shipments.len(),
        record.height
    );
    for s in &record.shipments {
        println!(
            "  {:<22} {:<6} {:<10} {} events, paid {}: {}",
            s.id, s.route, s.status, s.events, s.paid, s.title
        );
    }
    // The hints name the auditor's node: auditors are who verify.
    let node = endpoints
        .iter()
        .find(|e| e.member == AUDITOR)
        .or_else(|| endpoints.first());
    if let (Some(node), Some(first)) = (node, record.shipments.first()) {
        let genesis = devnet.layout.genesis();
        println!();
        println!(
            "Open it in a browser (every node serves the explorer): {}/s/{}",
            node.url.trim_end_matches('/'),
            first.id
        );
        println!(
            "Look closer with the custody CLI (cargo run -p custody-client --bin custody -- …):"
        );
        println!("  custody --node {} shipment show {}", node.url, first.id);
        println!(
            "  custody --node {} bundle {} -o bundle.json",
            node.url, first.id
        );
        println!(
            "  custody verify bundle bundle.json --genesis {}",
            genesis.display()
        );
        println!(
            "  custody --node {} verify chain --genesis {}",
            node.url,
            genesis.display()
        );
    }
}

/// Reads `demo.json`.
pub fn read_record(devnet: &Devnet) -> anyhow::Result<DemoRecord> {
    Ok(custody_client::verify::read_json(
        &devnet.layout.demo(),
        "demo record",
        1024 * 1024,
    )?)
}
