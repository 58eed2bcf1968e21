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
//! Each shipment is a plan of the shared scenario ([`crate::scenario`]): its steps are data
//! ([`tales`]), signed by [`Shipment::sign`] as the benchmark's and the tests' are, and told
//! here. Declarations are filled in with `custody_contracts::customs::assess` against the
//! reference book built from the node's own published tables, so every amount is the one the
//! validators compute.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use custody_client::personal::new_salt;
use custody_client::timeline::money;
use custody_client::Client;
use custody_contracts::ReferenceBook;
use custody_ledger::event::EncodedEvent;
use custody_ledger::model::*;
use custody_ledger::personal::{Disclosure, PersonalField};
use custody_ledger::state::ShipmentState;
use custody_ledger::{Digest, Keypair};
use serde::{Deserialize, Serialize};

use crate::documents::{self, Choices, Goods, Sale};
use crate::network::Endpoint;
use crate::reference;
use crate::roster::{AUDITOR, CARRIER, CUSTOMS};
use crate::scenario::{self, Cast, Part, Plan, Shipment, Step};
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
#[derive(Debug, Clone, Copy)]
struct Actor<'a> {
    member: &'a str,
    key: &'a Keypair,
    client: &'a Client,
}

/// The scenario's cast on this devnet, each part with the client of the node it submits to.
#[derive(Debug)]
struct Stage {
    cast: Cast,
    /// One per part, in [`Part::ALL`] order.
    clients: Vec<Client>,
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

impl Stage {
    fn new(devnet: &Devnet, endpoints: &[Endpoint]) -> anyhow::Result<Stage> {
        // A random salt seed: the names the demo commits cannot be found by guessing.
        let cast = Cast::of_devnet(devnet, new_salt().0)?;
        let clients = Part::ALL
            .iter()
            .map(|part| {
                // The last-mile carrier runs no node; it submits through its partner's.
                let node_member = match part {
                    Part::LastMile => CARRIER,
                    other => other.devnet_member(),
                };
                endpoints
                    .iter()
                    .find(|e| e.member == node_member)
                    .ok_or_else(|| anyhow!("no running node of {node_member}"))?
                    .client()
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Stage {
            cast,
            clients,
            gateway: gateway(devnet, endpoints),
        })
    }

    fn actor(&self, part: Part) -> Actor<'_> {
        let index = Part::ALL
            .iter()
            .position(|p| *p == part)
            .expect("every part is in Part::ALL");
        Actor {
            member: self.cast.id(part).as_str(),
            key: &self.cast.signer(part).key,
            client: &self.clients[index],
        }
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
    async fn disclose_latest(&self, actor: Actor<'_>, what: &str) -> anyhow::Result<()> {
        let Some(disclosure) = self.disclosures.last().cloned() else {
            return Ok(());
        };
        let stored = actor
            .client
            .disclose(actor.key, &self.shipment_id(), vec![disclosure])
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
        actor: Actor<'_>,
        event: EncodedEvent,
        story: String,
    ) -> anyhow::Result<u64> {
        submit::wait_height(
            actor.client,
            self.height,
            Duration::from_millis(CATCH_UP_TIMEOUT_MS),
        )
        .await?;
        let height = submit::committed(actor.client, &event)
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
        stage: &Stage,
        parcels: &[String],
        legs: &[(&str, &str, &str)],
    ) -> anyhow::Result<()> {
        let Some(gateway) = &stage.gateway else {
            println!(
                "{} (this devnet's carrier node has no EPCIS gateway: no scans)",
                clock()
            );
            return Ok(());
        };
        let carrier = stage.actor(Part::Carrier);
        submit::wait_height(
            carrier.client,
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
                carrier.client,
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
        let epc = format!(
            "https://id.gs1.org/00/{}",
            parcels.first().map_or("", String::as_str)
        );
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

/// A demo shipment: its plan, and how the story tells it.
#[derive(Debug)]
struct Tale {
    /// The end of its id, `SHP-{run}-{suffix}`.
    suffix: &'static str,
    /// Its goods, as the registration's line names them.
    summary: &'static str,
    /// The destination's tariff codes of the goods, when the seller asks at checkout what
    /// the parcel will cost the buyer.
    quote: Option<&'static [&'static str]>,
    /// The scenario's plan.
    plan: Plan,
    /// One line per step of the plan (see [`story`]).
    says: Vec<&'static str>,
    /// The record's title.
    title: &'static str,
    /// The record's route.
    route: &'static str,
    /// The part whose node the final status is read from.
    reader: Part,
}

/// The parts of a [`Tale`] that make its plan: the sale and goods, the broker's choices, and
/// each step with what the story says of it.
fn plan(
    (sale, goods): (Sale, Vec<Goods>),
    choices: Choices,
    scenes: Vec<(Step, &'static str)>,
) -> (Plan, Vec<&'static str>) {
    let (steps, says) = scenes.into_iter().unzip();
    (
        Plan {
            sale,
            goods,
            choices,
            steps,
        },
        says,
    )
}

/// The four shipments of the demo, in the order they start.
///
/// What a step says is a line of the story, with `{id}` (the shipment), `{awb}` (its air
/// waybill), `{rma}` (its return authorisation) and `{quoted}` (whether the payment is what
/// the checkout quoted) filled in. A registration, a scan, a declaration and a delivery tell
/// themselves from their events (their line is empty); a payment's line says why that party
/// pays.
fn tales() -> Vec<Tale> {
    let handed = |from, to, place, waybill| Step::Offer {
        from,
        to,
        place,
        waybill,
    };
    let release = Step::Clear {
        outcome: ClearanceOutcome::Release,
        reason: "",
    };
    let scan = |biz_step, place| Step::Scan {
        biz_step,
        disposition: "in_transit",
        place,
    };
    let (paris, paris_says) = plan(
        documents::paris_parcel(),
        scenario::paris_choices(),
        vec![
            (Step::Register, ""),
            (
                handed(Part::Seller, Part::Carrier, "CNSZX", true),
                "offered {id} to carrier-swift at Shenzhen (CNSZX), air waybill {awb}",
            ),
            (Step::Accept, "took custody of {id} at CNSZX"),
            (scan("departing", "CNSZX"), ""),
            (scan("arriving", "FRCDG"), ""),
            (
                handed(Part::Carrier, Part::LastMile, "FRCDG", true),
                "flew {id} to Paris-Charles de Gaulle (FRCDG), offered it to carrier-lastmile",
            ),
            (
                Step::Accept,
                "took custody of {id} at FRCDG: the parcel has arrived in France",
            ),
            (Step::Declare, ""),
            (
                Step::Pay { by: Part::Seller },
                "DDP: the seller pays{quoted}",
            ),
            (release.clone(), "recorded French customs' release of {id}"),
            (
                Step::Deliver {
                    by: Part::LastMile,
                    place: "FRPAR",
                    proof: ProofKind::Photo,
                    received_by: "C. Martin",
                },
                "",
            ),
        ],
    );
    let (quill, quill_says) = plan(
        documents::quill_parcel(),
        Choices {
            reference: String::new(),
            jurisdiction: "QY",
            currency: "USD",
            exchange_rate: None,
            regime: CustomsRegime::Full,
            hs_codes: vec!["420221", "847130"],
        },
        vec![
            (Step::Register, ""),
            (
                handed(Part::Seller, Part::Carrier, "CNSHA", true),
                "offered {id} to carrier-swift at Shanghai (CNSHA), air waybill {awb}",
            ),
            (Step::Accept, "took custody of {id} at CNSHA"),
            (
                handed(Part::Carrier, Part::Broker, "QYPRT", false),
                "landed {id} at Port Quill (QYPRT), offered it to broker-clear's bonded warehouse",
            ),
            (
                Step::Accept,
                "took custody of {id} in its bonded warehouse at QYPRT",
            ),
            (Step::Declare, ""),
            (
                Step::Pay { by: Part::Broker },
                "DAP: the buyer's broker pays as agent",
            ),
            (
                release.clone(),
                "recorded QY customs' release of {id} (SAMPLE tariff)",
            ),
            (
                handed(Part::Broker, Part::LastMile, "QYPRT", false),
                "released {id} from the bonded warehouse to carrier-lastmile",
            ),
            (Step::Accept, "took {id} out for delivery"),
            (
                Step::Deliver {
                    by: Part::LastMile,
                    place: "QYQCT",
                    proof: ProofKind::Signature,
                    received_by: "R. Quill",
                },
                "",
            ),
        ],
    );
    let (held, held_says) = plan(
        documents::qx_parcel(),
        scenario::qx_choices(),
        vec![
            (Step::Register, ""),
            (
                handed(Part::Seller, Part::Carrier, "CNSHA", true),
                "offered {id} to carrier-swift at Shanghai (CNSHA), air waybill {awb}",
            ),
            (
                Step::Accept,
                "took custody of {id} at CNSHA (FOB: the buyer's risk from here)",
            ),
            (
                handed(Part::Carrier, Part::LastMile, "QXAPT", true),
                "landed {id} at QXAPT, offered it to carrier-lastmile",
            ),
            (Step::Accept, "took custody of {id} at QXAPT: arrived in QX"),
            (Step::Declare, ""),
            (
                Step::Clear {
                    outcome: ClearanceOutcome::Hold,
                    reason: "duty and VAT unpaid; certificate of origin requested",
                },
                "recorded that QX customs HOLDS {id}: duty unpaid, origin to be proven",
            ),
            (
                Step::Attest {
                    document_type: "certificate_of_origin",
                    reference_prefix: "CO",
                },
                "attested the certificate of origin of {id} (its hash, on the ledger)",
            ),
            (
                Step::Pay { by: Part::Broker },
                "FOB: the buyer's broker pays as agent",
            ),
            (
                release.clone(),
                "recorded QX customs' release of {id} after payment",
            ),
        ],
    );
    // The rate is the declaration's own choice, stated exactly as a fraction; it is
    // illustrative, not an official customs rate.
    let rate = ExchangeRate {
        from: documents::currency("USD"),
        to: documents::currency("EUR"),
        numerator: 8_571,
        denominator: 10_000,
    };
    let (lyon, lyon_says) = plan(
        documents::lyon_parcel(),
        Choices {
            reference: String::new(),
            jurisdiction: "FR",
            currency: "EUR",
            exchange_rate: Some(rate),
            regime: CustomsRegime::Full,
            hs_codes: vec!["84713000", "61091000"],
        },
        vec![
            (Step::Register, ""),
            (
                handed(Part::Seller, Part::Carrier, "CNSZX", true),
                "offered {id} to carrier-swift at Shenzhen (CNSZX), air waybill {awb}",
            ),
            (Step::Accept, "took custody of {id} at CNSZX"),
            (
                handed(Part::Carrier, Part::LastMile, "FRLIO", true),
                "flew {id} to Lyon (FRLIO), offered it to carrier-lastmile",
            ),
            (
                Step::Accept,
                "took custody of {id} at FRLIO: arrived in France",
            ),
            (Step::Declare, ""),
            (
                Step::Pay { by: Part::Broker },
                "DAP: the buyer's broker pays as agent",
            ),
            (release, "recorded French customs' release of {id}"),
            (
                Step::Deliver {
                    by: Part::LastMile,
                    place: "FRLIO",
                    proof: ProofKind::Signature,
                    received_by: "L. Bernard",
                },
                "",
            ),
            (
                Step::RequestReturn {
                    line: 2,
                    quantity: 1,
                    reason: "wrong size",
                },
                "authorised the return of 1 T-shirt of {id} ({rma}: wrong size)",
            ),
            (
                Step::ReceiveReturn {
                    line: 2,
                    quantity: 1,
                    disposition: Disposition::Resellable,
                },
                "received the T-shirt of {id} back under {rma}: resellable",
            ),
        ],
    );
    vec![
        // (a) Two T-shirts, €150, DDP Paris: low-value relief with the flat duty, VAT paid by
        // the seller; released and delivered.
        Tale {
            suffix: "PAR",
            summary: "2 cotton T-shirts",
            quote: Some(&["61091000"]),
            plan: paris,
            says: paris_says,
            title: "2 cotton T-shirts, 150.00 EUR, DDP Paris (EU low-value regime)",
            route: "CN→FR",
            reader: Part::Seller,
        },
        // (b) A handbag and a laptop to the sample jurisdiction QY, DAP: the broker takes
        // custody at the port, pays as the buyer's agent, hands the released parcel to the
        // last mile.
        Tale {
            suffix: "QY",
            summary: "a handbag and a laptop",
            quote: None,
            plan: quill,
            says: quill_says,
            title: "a handbag and a laptop, 830.00 USD, DAP Port Quill (SAMPLE jurisdiction)",
            route: "CN→QY",
            reader: Part::Broker,
        },
        // (c) Boots and a dinner set to the sample jurisdiction QX, FOB: held until the duty
        // is paid and the certificate of origin attested, then released.
        Tale {
            suffix: "QX",
            summary: "2 pairs of boots and a dinner set",
            quote: None,
            plan: held,
            says: held_says,
            title: "boots and a dinner set, 242.00 EUR, FOB Shanghai, held then released (SAMPLE jurisdiction)",
            route: "CN→QX",
            reader: Part::Broker,
        },
        // (d) A laptop and two T-shirts in US dollars to Lyon, DAP, declared in euros;
        // delivered, then one T-shirt returned.
        Tale {
            suffix: "LYS",
            summary: "a laptop and 2 T-shirts",
            quote: None,
            plan: lyon,
            says: lyon_says,
            title: "a laptop and 2 T-shirts, 998.00 USD, DAP Lyon, declared in EUR; 1 T-shirt returned",
            route: "CN→FR",
            reader: Part::Seller,
        },
    ]
}

/// The line of the story for step `index` of `tale`, just signed for `shipment`; `quote` is
/// what the checkout quoted, if the seller asked.
fn story(
    tale: &Tale,
    shipment: &Shipment<'_>,
    index: usize,
    quote: Option<&custody_ledger::view::Quote>,
) -> String {
    let says = |quoted: &str| {
        tale.says[index]
            .replace("{id}", shipment.id())
            .replace("{awb}", &shipment.waybill())
            .replace("{rma}", &shipment.rma())
            .replace("{quoted}", quoted)
    };
    let id = shipment.id();
    match (
        &tale.plan.steps[index],
        shipment.registration(),
        shipment.declaration(),
    ) {
        (Step::Register, Some(registered), _) => {
            let sale = &tale.plan.sale;
            format!(
                "registered {id} ({}, {} {} {}, {}→{}, buyer name committed)",
                tale.summary,
                money(registered.invoice.total_minor, registered.invoice.currency),
                sale.incoterm.code(),
                sale.incoterm_place,
                sale.origin,
                sale.destination
            )
        }
        (Step::Declare, _, Some(decl)) => format!(
            "declared {id} in {} ({}): customs value {}, duty {}, {} {}",
            decl.jurisdiction,
            regime_text(decl),
            money(decl.customs_value_minor, decl.currency),
            money(decl.duty_total_minor, decl.currency),
            tax_name(decl),
            money(decl.tax_total_minor, decl.currency),
        ),
        (Step::Pay { .. }, _, Some(decl)) => {
            let quoted = match quote {
                None => "",
                Some(q)
                    if (decl.duty_total_minor, decl.tax_total_minor)
                        == (q.duty_total_minor, q.tax_total_minor) =>
                {
                    ", as quoted at checkout"
                }
                Some(_) => " (the reference data changed since the quote)",
            };
            format!(
                "paid {} of duty and {} for {id} ({})",
                money(decl.duty_total_minor + decl.tax_total_minor, decl.currency),
                tax_name(decl),
                says(quoted)
            )
        }
        (Step::Deliver { place, proof, .. }, _, _) => format!(
            "delivered {id} at {place}, receiver's name committed ({} proof hashed on the ledger)",
            match proof {
                ProofKind::Signature => "signature",
                ProofKind::Photo => "photo",
                ProofKind::OneTimeCode => "one-time code",
            }
        ),
        _ => says(""),
    }
}

/// What a personal value is, for people.
fn personal_value(field: PersonalField) -> &'static str {
    match field {
        PersonalField::BuyerName => "the buyer's name",
        PersonalField::BuyerAddress => "the buyer's address",
        PersonalField::BuyerPersonalId => "the buyer's personal id",
        PersonalField::ReceivedBy => "the receiver's name",
    }
}

/// Runs `tale` as shipment `SHP-{run}-{suffix}`: asks for its quote if it has one, then
/// signs each step of its plan as it comes (scans go through the carrier's EPCIS gateway
/// instead), submits it through its party's node, tells it, and discloses the personal value
/// it commits to, if any, to that party's node.
async fn tell(
    stage: &Stage,
    book: &ReferenceBook,
    run: &str,
    serial: u64,
    tale: &Tale,
) -> anyhow::Result<ShipmentRecord> {
    let mut t = Track::new(format!("SHP-{run}-{}", tale.suffix));
    let mut shipment = Shipment::new(&tale.plan, t.id.clone(), serial);
    let seller = stage.actor(Part::Seller);
    let quote = match tale.quote {
        // Before the sale, at checkout: what will this parcel cost the buyer?
        Some(tariff_codes) => {
            let quote = seller
                .client
                .quote(&draft(&tale.plan.sale, &tale.plan.goods, tariff_codes))
                .await
                .with_context(|| format!("quoting {}", t.id))?;
            println!("{} {:<17} {}", clock(), seller.member, quote_text(&quote));
            Some(quote)
        }
        None => None,
    };
    let steps = &tale.plan.steps;
    let mut index = 0;
    while index < steps.len() {
        // Consecutive scans go to the gateway in one EPCIS document.
        let legs: Vec<(&str, &str, &str)> = steps[index..]
            .iter()
            .map_while(|step| match step {
                Step::Scan {
                    biz_step,
                    disposition,
                    place,
                } => Some((*biz_step, *disposition, *place)),
                _ => None,
            })
            .collect();
        if !legs.is_empty() {
            let parcels: Vec<String> = shipment
                .registration()
                .map(|r| r.parcels.iter().map(|p| p.sscc.clone()).collect())
                .unwrap_or_default();
            t.scans(stage, &parcels, &legs).await?;
            index += legs.len();
            continue;
        }
        let signed = shipment.sign(&stage.cast, book, index, setup::now())?;
        let actor = stage.actor(signed.by);
        let line = story(tale, &shipment, index, quote.as_ref());
        t.step(actor, signed.event, line).await?;
        if let Some(disclosure) = signed.disclosure {
            let what = personal_value(disclosure.field);
            t.disclosures.push(disclosure);
            t.disclose_latest(actor, what).await?;
        }
        index += 1;
    }
    let paid = shipment
        .declaration()
        .map(|decl| money(decl.duty_total_minor + decl.tax_total_minor, decl.currency))
        .unwrap_or_default();
    t.finish(
        stage.actor(tale.reader).client,
        tale.title.into(),
        tale.route.into(),
        paid,
    )
    .await
}

/// Runs the [`tales`] at once, the `i`-th with serial `serial + i`; their records, in order.
async fn tell_all(
    stage: &Arc<Stage>,
    book: ReferenceBook,
    run: &str,
    serial: u64,
) -> anyhow::Result<Vec<ShipmentRecord>> {
    let tales = Arc::new(tales());
    let book = Arc::new(book);
    let mut running = tokio::task::JoinSet::new();
    for index in 0..tales.len() {
        let (stage, book, tales, run) =
            (stage.clone(), book.clone(), tales.clone(), run.to_owned());
        running.spawn(async move {
            let serial = serial + index as u64;
            (
                index,
                tell(&stage, &book, &run, serial, &tales[index]).await,
            )
        });
    }
    let mut records = vec![None; tales.len()];
    // Each shipment's waits are bounded; the first failure drops the set, which stops the
    // others.
    while let Some(done) = running.join_next().await {
        let (index, record) = done.map_err(|e| anyhow!("a demo shipment stopped: {e}"))?;
        records[index] = Some(record?);
    }
    Ok(records.into_iter().flatten().collect())
}

/// Runs the demo against the running nodes of `devnet`: publishes the reference data, runs
/// the four shipments at once, prints the story and a summary, and writes `demo.json`.
pub async fn run(devnet: &Devnet, endpoints: &[Endpoint]) -> anyhow::Result<DemoRecord> {
    let stage = Arc::new(Stage::new(devnet, endpoints)?);
    let customs = stage.actor(Part::Customs);
    println!();
    println!("Demo: the customs authority publishes the reference data, then four shipments.");
    let published = reference::ensure_published(
        customs.client,
        stage.cast.signer(Part::Customs),
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
    let book = reference::load_book_at(stage.actor(Part::Broker).client, published).await?;
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
    let shipments = tell_all(&stage, book, &run, serial).await?;
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
        let holders = personal_holders(&stage, endpoints, &shipment.id).await;
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
async fn personal_holders(stage: &Stage, endpoints: &[Endpoint], shipment: &str) -> usize {
    let id = ShipmentId::new(shipment);
    let mut holders = 0;
    for endpoint in endpoints {
        let Ok(client) = endpoint.client() else {
            continue;
        };
        if let Ok(view) = client.personal(stage.actor(Part::Seller).key, &id).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::tests::{published, run};
    use custody_ledger::state::ShipmentStatus;
    use custody_ledger::Timestamp;

    #[test]
    fn every_step_of_every_demo_shipment_is_accepted_by_the_contract_rules_and_told() {
        let tales = tales();
        for (customs, version) in [
            (CUSTOMS, custody_contracts::registry::LATEST_RULES_VERSION),
            ("customs-qx", 1),
        ] {
            let (mut chain, cast) = published(customs, version);
            let mut shipments: Vec<Shipment<'_>> = tales
                .iter()
                .enumerate()
                .map(|(i, tale)| {
                    assert_eq!(tale.says.len(), tale.plan.steps.len(), "{}", tale.suffix);
                    Shipment::new(&tale.plan, format!("SHP-T-{}", tale.suffix), 500 + i as u64)
                })
                .collect();
            let now = Timestamp(chain.time.as_millis() + 1_000);
            run(&mut chain, &cast, &mut shipments, now);
            // The statuses the devnet's tests expect of the demo.
            for (shipment, expected) in shipments.iter().zip([
                ShipmentStatus::Delivered,
                ShipmentStatus::Delivered,
                ShipmentStatus::Released,
                ShipmentStatus::Returned,
            ]) {
                assert_eq!(chain.status(shipment.id()), expected, "{}", shipment.id());
            }
            // Every line of the story is filled in (scans are told with the gateway's answer).
            for (tale, shipment) in tales.iter().zip(&shipments) {
                for (index, step) in tale.plan.steps.iter().enumerate() {
                    if matches!(step, Step::Scan { .. }) {
                        continue;
                    }
                    let line = story(tale, shipment, index, None);
                    assert!(line.contains(shipment.id()), "{line}");
                    assert!(!line.contains('{') && !line.contains('}'), "{line}");
                }
            }
            let paris = &shipments[0];
            assert_eq!(
                story(&tales[0], paris, 1, None),
                format!(
                    "offered SHP-T-PAR to carrier-swift at Shenzhen (CNSZX), air waybill {}",
                    paris.waybill()
                )
            );
            assert!(story(&tales[0], paris, 8, None).ends_with("(DDP: the seller pays)"));
            assert_eq!(
                story(&tales[3], &shipments[3], 9, None),
                "authorised the return of 1 T-shirt of SHP-T-LYS (RMA-SHP-T-LYS: wrong size)"
            );
        }
    }
}
