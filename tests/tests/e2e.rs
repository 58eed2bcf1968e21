//! End to end through the `custody` CLI against a real four-validator network: four node
//! processes of the rig (each with its own sled store, consensus and gossip over loopback
//! through the rig's proxies) and the CLI as a separate process. One shipment goes from
//! registration through two handoffs, a declaration, a payment, clearance and delivery to a
//! return; its bundle is fetched and verified offline, then broken one byte at a time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use custody_contracts::{customs, load, ContractRules};
use custody_ledger::bundle::Bundle;
use custody_ledger::keys::Keypair;
use custody_ledger::model::*;
use custody_ledger::store::MemoryStore;
use custody_ledger::testkit::{registration, TestNet};
use custody_ledger::Timestamp;
use custody_rig::command::{self, Ran};
use custody_rig::{Network, Program};
use serde_json::Value;

/// How long one CLI command may take: a `--wait` submit waits for its commit, and the nodes
/// share a small machine with the other tests' networks.
const CLI_TIMEOUT_MS: u64 = 120_000;

/// A French tariff for the test (illustrative duty rates, the real 20 % VAT).
const FR_TARIFF: &str = r#"{"jurisdiction":"FR","currency":"EUR","vat_rate_ppm":200000,"lines":[{"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":120000}}},{"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":65000}}}]}"#;

/// The reference data the scenario needs, as published by the customs authority.
fn reference_tables() -> Vec<ReferenceDataPublished> {
    let from = Timestamp::from_date(2025, 1, 1).expect("date");
    let mut tables = load::sample_tables(from);
    tables.extend(load::de_minimis_events());
    tables.push(load::tariff_from_json(FR_TARIFF, from).expect("tariff"));
    tables
}

/// The test network's four validators as node processes of the rig, and a folder for the
/// test's own files (keys, payloads, bundles).
fn start() -> (Network, tempfile::TempDir) {
    let network = Network::builder(Program::devnet(env!("CARGO_BIN_EXE_custody-rig-node")))
        .testnet(TestNet::new())
        .start()
        .expect("the network starts");
    (network, tempfile::tempdir().expect("tempdir"))
}

/// A runtime for the test's own SDK calls (the CLI and the nodes are other processes).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the CLI against node `node` and returns what it did (bounded).
fn custody(network: &Network, node: usize, args: &[&str]) -> Ran {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_custody-rig-cli"));
    cli.args(args).env("CUSTODY_NODE", network.url(node));
    command::run(cli, scratch.path(), Duration::from_millis(CLI_TIMEOUT_MS)).expect("run custody")
}

/// Runs the CLI and requires success; returns stdout.
fn ok(network: &Network, node: usize, args: &[&str]) -> String {
    let output = custody(network, node, args);
    assert!(
        output.status.success(),
        "{}",
        output.describe("custody", args)
    );
    output.stdout
}

/// Submits with `--wait --json` and returns the committed event's id.
fn submit(network: &Network, node: usize, key: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "--json",
        "submit",
        "--wait",
        "--key",
        key.to_str().expect("path"),
    ];
    all.extend_from_slice(args);
    let out: Value = serde_json::from_str(&ok(network, node, &all)).expect("json answer");
    assert_eq!(out["status"], "committed", "{out}");
    out["event_id"].as_str().expect("event id").to_owned()
}

fn write_json<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).expect("json")).expect("write");
    path
}

/// The declaration a broker's software would compute for the shipment as the node holds it,
/// with the rules the reference data makes.
fn declaration(net: &TestNet, shipment: &custody_ledger::state::ShipmentState) -> CustomsDeclared {
    let store = MemoryStore::new(net.genesis_hash());
    let tables = reference_tables()
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect();
    let rules = net
        .commit_with(
            &store,
            &ContractRules::default(),
            tables,
            Timestamp::from_date(2026, 11, 2).expect("date"),
        )
        .expect("commit")
        .into_rules();
    let mut decl = CustomsDeclared {
        shipment_id: shipment.shipment_id.clone(),
        declaration_ref: "DEC-E2E-1".into(),
        jurisdiction: CountryCode::parse("FR").expect("FR"),
        transport_mode: TransportMode::Courier,
        currency: custody_ledger::testkit::eur(),
        valuation_basis: ValuationBasis::CIF,
        customs_value_minor: 0,
        freight_minor: 0,
        insurance_minor: 0,
        exchange_rate: None,
        regime: CustomsRegime::Full,
        lines: ["61091000", "69120000"]
            .iter()
            .enumerate()
            .map(|(i, hs)| DeclarationLine {
                invoice_line: i as u32 + 1,
                hs_code: (*hs).into(),
                customs_value_minor: 0,
                duty_minor: 0,
                tax_minor: 0,
            })
            .collect(),
        duty_total_minor: 0,
        tax_total_minor: 0,
    };
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
    );
    let assessment = customs::assess(
        net.genesis.rules_version_at(1),
        &rules.book,
        now,
        shipment,
        &decl,
        "event",
    )
    .expect("assessable");
    customs::complete(&mut decl, &assessment);
    decl
}

#[test]
fn a_shipment_through_the_cli_and_its_bundle_verified_offline() {
    let (mut network, scratch) = start();
    let net = network.testnet();
    let files = scratch.path().join("cli");
    std::fs::create_dir_all(&files).expect("mkdir");
    let key = |member: &str| -> PathBuf {
        let path = files.join(format!("{member}.pem"));
        if !path.exists() {
            custody_client::keyfile::write_key(&path, net.key(member)).expect("key file");
        }
        path
    };
    let genesis = network.genesis_file().to_str().expect("path").to_owned();

    // The customs authority publishes the reference data, through node 0.
    for (i, table) in reference_tables().iter().enumerate() {
        let payload = write_json(&files, &format!("table-{i}.json"), table);
        submit(
            &network,
            0,
            &key("customs-qx"),
            &["publish-reference", "--payload", payload.to_str().unwrap()],
        );
    }

    // Before the sale: what will this parcel cost the buyer? The seller asks for a quote of
    // the goods it is about to register (the same invoice lines, with French tariff codes).
    let goods = registration("E2E-1", "CN", "FR");
    let draft = serde_json::json!({
        "origin": "CN",
        "destination": "FR",
        "incoterm": "DDP",
        "transport_mode": "courier",
        "currency": "EUR",
        "lines": goods.invoice.lines.iter().zip(["61091000", "69120000"]).map(|(l, code)| serde_json::json!({
            "description": l.description,
            "hs_code": l.hs_code,
            "tariff_code": code,
            "quantity": l.quantity,
            "unit": l.unit,
            "unit_value_minor": l.unit_value_minor,
            "net_weight_grams": l.net_weight_grams,
            "origin_country": "CN",
        })).collect::<Vec<_>>(),
        "freight_minor": goods.invoice.freight_minor,
        "insurance_minor": goods.invoice.insurance_minor,
    });
    let draft_file = write_json(&files, "draft.json", &draft);
    let quote: custody_ledger::view::Quote = serde_json::from_str(&ok(
        &network,
        0,
        &["--json", "quote", draft_file.to_str().expect("path")],
    ))
    .expect("a quote");
    assert_eq!(quote.regime.regime, CustomsRegime::Full);
    assert_eq!(quote.payer.duty_and_tax, "seller", "DDP");
    let text = ok(&network, 0, &["quote", draft_file.to_str().expect("path")]);
    assert!(text.contains("landed cost"), "{text}");
    let bad = write_json(
        &files,
        "bad-draft.json",
        &serde_json::json!({ "origin": "CN" }),
    );
    let refused = custody(&network, 0, &["quote", bad.to_str().expect("path")]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a file that is not a draft: a usage failure"
    );

    // The seller registers the shipment (through node 1), and custody changes hands twice.
    let reg = write_json(
        &files,
        "registration.json",
        &registration("E2E-1", "CN", "FR"),
    );
    submit(
        &network,
        1,
        &key("seller-acme"),
        &["register", "--payload", reg.to_str().unwrap()],
    );
    let p1 = submit(
        &network,
        1,
        &key("seller-acme"),
        &[
            "propose-handoff",
            "--shipment",
            "E2E-1",
            "--to",
            "carrier-swift",
            "--place",
            "CNSHA",
        ],
    );
    submit(
        &network,
        2,
        &key("carrier-swift"),
        &["accept-handoff", "--shipment", "E2E-1", "--proposal", &p1],
    );
    let p2 = submit(
        &network,
        2,
        &key("carrier-swift"),
        &[
            "propose-handoff",
            "--shipment",
            "E2E-1",
            "--to",
            "carrier-lastmile",
            "--place",
            "FRCDG",
        ],
    );
    submit(
        &network,
        3,
        &key("carrier-lastmile"),
        &["accept-handoff", "--shipment", "E2E-1", "--proposal", &p2],
    );

    // The broker declares it (amounts computed from the state the node serves), the seller pays
    // (DDP), the broker records the release, the last-mile carrier delivers, one unit returns.
    let state: Value =
        serde_json::from_str(&ok(&network, 3, &["--json", "shipment", "show", "E2E-1"]))
            .expect("json");
    let shipment: custody_ledger::state::ShipmentState =
        serde_json::from_value(state["state"].clone()).expect("shipment state");
    let decl = declaration(net, &shipment);
    // The quote told the declaration's figures before the shipment existed.
    assert_eq!(
        (
            quote.duty_total_minor,
            quote.tax_total_minor,
            quote.valuation.customs_value_minor
        ),
        (
            decl.duty_total_minor,
            decl.tax_total_minor,
            decl.customs_value_minor
        )
    );
    let due = decl.duty_total_minor + decl.tax_total_minor;
    let decl_file = write_json(&files, "declaration.json", &decl);
    let d = submit(
        &network,
        0,
        &key("broker-clear"),
        &["declare", "--payload", decl_file.to_str().unwrap()],
    );
    submit(
        &network,
        1,
        &key("seller-acme"),
        &[
            "pay",
            "--shipment",
            "E2E-1",
            "--declaration",
            &d,
            "--amount-minor",
            &due.to_string(),
            "--currency",
            "EUR",
            "--reference",
            "PAY-E2E-1",
        ],
    );
    submit(
        &network,
        2,
        &key("broker-clear"),
        &[
            "clear",
            "--shipment",
            "E2E-1",
            "--declaration",
            &d,
            "--outcome",
            "release",
            "--authority-reference",
            "MRN-E2E-1",
        ],
    );
    let proof = files.join("signature.png");
    std::fs::write(&proof, b"a signature, as an image").expect("proof");
    submit(
        &network,
        3,
        &key("carrier-lastmile"),
        &[
            "deliver",
            "--shipment",
            "E2E-1",
            "--place",
            "FRPAR",
            "--received-by",
            "J. Buyer",
            "--disclosure-out",
            files.join("received-by.json").to_str().unwrap(),
            "--proof-kind",
            "signature",
            "--proof-file",
            proof.to_str().unwrap(),
        ],
    );
    submit(
        &network,
        0,
        &key("seller-acme"),
        &[
            "request-return",
            "--shipment",
            "E2E-1",
            "--rma",
            "RMA-E2E-1",
            "--line",
            "1:1",
            "--reason",
            "wrong size",
        ],
    );
    submit(
        &network,
        0,
        &key("seller-acme"),
        &[
            "receive-return",
            "--shipment",
            "E2E-1",
            "--rma",
            "RMA-E2E-1",
            "--line",
            "1:1:resellable",
        ],
    );

    // Every node tells the same story.
    for node in 0..4 {
        let shown: Value = serde_json::from_str(&ok(
            &network,
            node,
            &["--json", "shipment", "show", "E2E-1"],
        ))
        .expect("json");
        assert_eq!(shown["state"]["status"], "returned", "node {node}: {shown}");
        assert_eq!(
            shown["events"].as_array().map(Vec::len),
            Some(11),
            "node {node}"
        );
    }
    let timeline = ok(&network, 2, &["shipment", "show", "E2E-1"]);
    for needle in [
        "carrier-swift",
        "carrier-lastmile",
        "CNSHA",
        "FRCDG",
        "FRPAR",
        "release",
    ] {
        assert!(
            timeline.to_lowercase().contains(&needle.to_lowercase()),
            "{needle} missing from:\n{timeline}"
        );
    }

    // The bundle, fetched from one node, verifies offline with only the genesis file.
    let bundle_file = files.join("bundle.json");
    ok(
        &network,
        1,
        &["bundle", "E2E-1", "-o", bundle_file.to_str().unwrap()],
    );
    let verified = ok(
        &network,
        1,
        &[
            "--json",
            "verify",
            "bundle",
            bundle_file.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    let verified: Value = serde_json::from_str(&verified).expect("json");
    assert_eq!(verified["valid"], true, "{verified}");

    // Issue 15: the receiver's name is on the ledger only as a commitment. The last-mile
    // carrier, a party, gives the value and salt to the seller's node; a bundle fetched with
    // its signed request carries them as a disclosure, which verifies against the
    // commitment, and a changed value is refused by name.
    ok(
        &network,
        0,
        &[
            "personal",
            "disclose",
            "E2E-1",
            "--file",
            files.join("received-by.json").to_str().unwrap(),
            "--key",
            key("carrier-lastmile").to_str().unwrap(),
        ],
    );
    let disclosed_file = files.join("bundle-disclosed.json");
    ok(
        &network,
        0,
        &[
            "bundle",
            "E2E-1",
            "-o",
            disclosed_file.to_str().unwrap(),
            "--disclose-with",
            key("carrier-lastmile").to_str().unwrap(),
        ],
    );
    let disclosed = ok(
        &network,
        0,
        &[
            "--json",
            "verify",
            "bundle",
            disclosed_file.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    let disclosed: Value = serde_json::from_str(&disclosed).expect("json");
    assert_eq!(
        disclosed["disclosures"][0]["field"], "received_by",
        "{disclosed}"
    );
    assert_eq!(
        disclosed["disclosures"][0]["value"], "J. Buyer",
        "{disclosed}"
    );
    assert!(
        !std::fs::read_to_string(&bundle_file)
            .unwrap()
            .contains("J. Buyer"),
        "the public bundle carries no personal value"
    );

    // One byte changed in an event, in the map proof, in a certificate signature, an event
    // left out, a block time moved: each is refused with exit code 1, naming what broke.
    let original: Bundle = serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    let mut tampered = Vec::new();
    let mut b = original.clone();
    let middle = b.events[4].bytes.len() / 2;
    b.events[4].bytes[middle] ^= 0x01;
    tampered.push(("event", b, &["event.id", "event.bytes"][..], Some(4)));
    let mut b = original.clone();
    // A sibling more than the map holds: the proof no longer leads to the header's root.
    b.shipment_proof
        .siblings
        .push(custody_ledger::Digest([0x5a; 32]));
    tampered.push(("proof", b, &["bundle.complete"][..], None));
    // Issue 15: an event left out, and a block time changed, are caught by name.
    let mut b = original.clone();
    b.events.remove(3);
    tampered.push(("omitted", b, &["event.chain"][..], Some(3)));
    let mut b = original.clone();
    b.events[0].time = custody_ledger::Timestamp(b.events[0].time.0 - 1);
    tampered.push(("retimed", b, &["event.chain"][..], Some(1)));
    let mut b = original.clone();
    b.checkpoint.certificate.signatures[1].signature.0[0] ^= 0x01;
    tampered.push(("certificate", b, &["checkpoint.certificate"][..], None));
    let mut b: Bundle = serde_json::from_slice(&std::fs::read(&disclosed_file).unwrap()).unwrap();
    b.disclosures[0].value = "Someone Else".into();
    tampered.push(("disclosure", b, &["disclosure.commitment"][..], Some(0)));
    for (what, bundle, checks, index) in tampered {
        // The report names the event at `index` of the tampered bundle; a disclosure check
        // names the disclosure's position and the event it opens.
        let named = index.map(|i| match what {
            "disclosure" => bundle.disclosures[i].event_id,
            _ => bundle.events[i].event_id,
        });
        let path = files.join(format!("tampered-{what}.json"));
        std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
        let args = [
            "--json",
            "verify",
            "bundle",
            path.to_str().unwrap(),
            "--genesis",
            &genesis,
        ];
        let output = custody(&network, 0, &args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            output.describe("custody", &args)
        );
        let report: Value = serde_json::from_str(&output.stdout).expect("json report");
        assert_eq!(report["valid"], false);
        let check = report["check"].as_str().unwrap_or_default();
        assert!(checks.contains(&check), "{what}: {report}");
        match index {
            Some(i) => {
                assert_eq!(report["index"], i, "{what}: {report}");
                assert_eq!(
                    report["event_id"],
                    named.expect("an index names an event").to_hex(),
                    "{what}: {report}"
                );
            }
            None => assert!(report["index"].is_null(), "{what}: {report}"),
        }
    }

    // The whole ledger verifies from the genesis file, and every node is at the same head.
    let chain = ok(
        &network,
        3,
        &["--json", "verify", "chain", "--genesis", &genesis],
    );
    let chain: Value = serde_json::from_str(&chain).expect("json");
    assert_eq!(chain["valid"], true, "{chain}");

    // The explorer's queries through the SDK: the node's genesis is the one the network was
    // started with, the shipment is found by its parcel's SSCC and its invoice number, and
    // a bad filter is a problem naming the parameter.
    let sdk = custody_client::Client::new(&network.url(1)).expect("client");
    let rt = runtime();
    assert_eq!(
        rt.block_on(sdk.genesis()).expect("genesis").hash(),
        network.genesis().hash()
    );
    let view = rt.block_on(sdk.network()).expect("network");
    assert_eq!(view.chain_id, net.genesis.chain_id);
    assert!(view.recent_blocks.len() > 1, "{view:?}");
    let seller = rt
        .block_on(sdk.member(&MemberId::new("seller-acme")))
        .expect("member");
    assert_eq!(seller.id.as_str(), "seller-acme");
    for q in [goods.parcels[0].sscc.clone(), goods.invoice.number.clone()] {
        let query = custody_client::ShipmentQuery {
            q: Some(q.clone()),
            ..Default::default()
        };
        let found = rt.block_on(sdk.shipments(&query)).expect("search");
        let ids: Vec<_> = found
            .shipments
            .iter()
            .map(|s| s.shipment_id.clone())
            .collect();
        assert_eq!(ids, std::slice::from_ref(&goods.shipment_id), "q={q}");
    }
    let bad = custody_client::ShipmentQuery {
        status: Some("lost_at_sea".into()),
        ..Default::default()
    };
    let error = rt.block_on(sdk.shipments(&bad)).expect_err("a bad status");
    assert_eq!(error.status(), Some(400), "{error}");
    assert_eq!(error.code(), Some("request.query"), "{error}");
    network
        .stop_and_compare()
        .expect("the nodes stop cleanly and agree");
}

/// GS1's EPCIS 2.0 JSON Schema, beside the project (never copied into it).
const EPCIS_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/epcis/EPCIS-JSON-Schema.json"
);

/// A tracking scan as a carrier's system writes it: SSCC as a Digital Link, places as the
/// UN/LOCODE URIs of docs/EPCIS.md.
fn epcis_scan(time: &str, step: &str, disposition: &str, locode: &str) -> Value {
    serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": time,
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["https://id.gs1.org/00/106141411234567897"],
        "action": "OBSERVE",
        "bizStep": step,
        "disposition": disposition,
        "readPoint": {"id": format!("urn:custody:locode:{locode}")},
        "bizLocation": {"id": format!("urn:custody:locode:{locode}")}
    })
}

fn epcis_document(events: Vec<Value>) -> Value {
    serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-03T00:00:00Z",
        "epcisBody": {"eventList": events}
    })
}

#[test]
fn epcis_capture_through_the_cli_puts_tracking_scans_on_the_ledger() {
    let (mut network, scratch) = start();
    let net = network.testnet();
    let files = scratch.path().join("cli");
    std::fs::create_dir_all(&files).expect("mkdir");
    let key = |member: &str| -> PathBuf {
        let path = files.join(format!("{member}.pem"));
        if !path.exists() {
            custody_client::keyfile::write_key(&path, net.key(member)).expect("key file");
        }
        path
    };
    for (i, table) in reference_tables().iter().enumerate() {
        let payload = write_json(&files, &format!("table-{i}.json"), table);
        submit(
            &network,
            0,
            &key("customs-qx"),
            &["publish-reference", "--payload", payload.to_str().unwrap()],
        );
    }
    let reg = write_json(
        &files,
        "registration.json",
        &registration("EPC-1", "CN", "FR"),
    );
    submit(
        &network,
        1,
        &key("seller-acme"),
        &["register", "--payload", reg.to_str().unwrap()],
    );
    let carrier = key("carrier-swift");
    let carrier = carrier.to_str().unwrap();
    let sdk = custody_client::Client::new(&network.url(2)).expect("client");
    let rt = runtime();
    let history = || {
        rt.block_on(sdk.all_shipment_events(&ShipmentId::new("EPC-1")))
            .expect("history")
    };
    let capture = |name: &str, document: &Value, extra: &[&str]| -> (Option<i32>, Value) {
        let file = write_json(&files, name, document);
        let mut args = vec![
            "--json",
            "epcis",
            "capture",
            file.to_str().unwrap(),
            "--key",
            carrier,
        ];
        args.extend_from_slice(extra);
        let output = custody(&network, 2, &args);
        let report = serde_json::from_str(&output.stdout).unwrap_or(Value::Null);
        eprintln!("{}", output.describe("custody", &args));
        (output.status.code(), report)
    };

    // Two scans, checked against GS1's schema first: both committed, as tracking scans.
    let document = epcis_document(vec![
        epcis_scan("2026-11-02T08:00:00Z", "departing", "in_transit", "CNSHA"),
        epcis_scan(
            "2026-11-03T09:30:00.250Z",
            "arriving",
            "in_progress",
            "FRCDG",
        ),
    ]);
    let (code, report) = capture(
        "scans.jsonld",
        &document,
        &["--shipment", "EPC-1", "--schema", EPCIS_SCHEMA],
    );
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["committed"], 2, "{report}");
    let events = history();
    assert_eq!(events.len(), 3);
    let expected = [
        ("departing", "in_transit", "CNSHA", 1_793_606_400_000u64),
        ("arriving", "in_progress", "FRCDG", 1_793_698_200_250),
    ];
    for (i, (step, disposition, place, at)) in expected.iter().enumerate() {
        let entry = &events[i + 1];
        assert_eq!(
            report["events"][i]["event_id"],
            entry.event_id.to_hex(),
            "{report}"
        );
        assert_eq!(report["events"][i]["height"], entry.height, "{report}");
        assert_eq!(entry.event.signer, net.key("carrier-swift").public());
        assert_eq!(entry.event.event.occurred_at, Timestamp(*at));
        let EventKind::TrackingScanRecorded(scan) = &entry.event.event.kind else {
            panic!("not a scan: {:?}", entry.event.event.kind)
        };
        assert_eq!(scan.shipment_id, ShipmentId::new("EPC-1"));
        assert_eq!(scan.parcels, ["106141411234567897"]);
        assert_eq!(
            (
                scan.biz_step.as_str(),
                scan.disposition.as_str(),
                scan.read_point.as_str(),
                scan.biz_location.as_str()
            ),
            (*step, *disposition, *place, *place)
        );
        assert_eq!(scan.read_point_gln, None);
        assert!(scan.sensor_readings.is_empty() && !scan.exception);
    }

    // Not a document, not JSON, not valid EPCIS: exit 2, nothing submitted.
    let (code, _) = capture(
        "not-a-document.json",
        &serde_json::json!({"type": "EPCISDocument"}),
        &["--shipment", "EPC-1"],
    );
    assert_eq!(code, Some(2));
    let mut invalid = document.clone();
    invalid["epcisBody"]["eventList"][0]["action"] = "LOOK".into();
    let (code, _) = capture(
        "schema-invalid.jsonld",
        &invalid,
        &["--shipment", "EPC-1", "--schema", EPCIS_SCHEMA],
    );
    assert_eq!(code, Some(2));
    let garbage = files.join("garbage.jsonld");
    std::fs::write(&garbage, b"{ not json").unwrap();
    let output = custody(
        &network,
        2,
        &[
            "epcis",
            "capture",
            garbage.to_str().unwrap(),
            "--key",
            carrier,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(history().len(), 3);

    // An unmappable event (a quantity list no mapping reads) is refused naming the field, and
    // nothing is submitted for it; the good event after it is committed; exit 1.
    let mut bad = epcis_scan("2026-11-04T10:00:00Z", "departing", "in_transit", "FRCDG");
    bad["quantityList"] =
        serde_json::json!([{"epcClass": "https://id.gs1.org/01/04006381333931", "quantity": 2}]);
    let good = epcis_scan("2026-11-04T11:00:00Z", "arriving", "in_progress", "FRPAR");
    let (code, report) = capture(
        "mixed.jsonld",
        &epcis_document(vec![bad, good]),
        &["--shipment", "EPC-1"],
    );
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["events"][0]["status"], "refused", "{report}");
    assert_eq!(report["events"][0]["code"], "epcis_capture.unsupported");
    assert_eq!(report["events"][0]["field"], "quantityList");
    assert_eq!(report["events"][1]["status"], "committed", "{report}");
    let events = history();
    assert_eq!(events.len(), 4);
    let EventKind::TrackingScanRecorded(scan) = &events[3].event.event.kind else {
        panic!("not a scan")
    };
    assert_eq!(scan.read_point, "FRPAR");

    // Without the shipment, a scan is refused as unresolved; a scan of an unknown parcel is
    // refused by the node with its code.
    let (code, report) = capture(
        "no-shipment.jsonld",
        &epcis_document(vec![epcis_scan(
            "2026-11-05T10:00:00Z",
            "departing",
            "in_transit",
            "FRPAR",
        )]),
        &[],
    );
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["events"][0]["code"], "epcis_capture.unresolved");
    let mut stranger = epcis_scan("2026-11-05T10:00:00Z", "departing", "in_transit", "FRPAR");
    stranger["epcList"] = serde_json::json!(["urn:epc:id:sscc:0614141.1999999999"]);
    let (code, report) = capture(
        "stranger.jsonld",
        &epcis_document(vec![stranger]),
        &["--shipment", "EPC-1"],
    );
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["events"][0]["status"], "refused", "{report}");
    assert_eq!(
        report["events"][0]["code"], "scan.unknown_parcel",
        "{report}"
    );
    assert_eq!(history().len(), 4);
    network
        .stop_and_compare()
        .expect("the nodes stop cleanly and agree");
}

/// Runs the CLI and returns its exit status and its `--json` report.
fn report(network: &Network, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = custody(network, 0, &all);
    let value = serde_json::from_str(&output.stdout).unwrap_or(Value::Null);
    eprintln!("{}", output.describe("custody", &all));
    (output.status.code(), value)
}

/// Issue 15: `custody verify consistency` against a real network. Two certified checkpoints
/// and the RFC 6962 proof between their log sizes are valid (exit 0); a saved proof with one
/// hash changed, or naming another root or other sizes, is invalid (exit 1, naming the check);
/// a height the node does not have, or an unreadable proof file, is a tool error (exit 2).
#[test]
fn verify_consistency_against_a_real_network() {
    let (mut network, scratch) = start();
    let net = network.testnet();
    let files = scratch.path().join("consistency");
    std::fs::create_dir_all(&files).expect("mkdir");
    let key = files.join("customs-qx.pem");
    custody_client::keyfile::write_key(&key, net.key("customs-qx")).expect("key file");
    for (i, table) in reference_tables().iter().enumerate() {
        let payload = write_json(&files, &format!("table-{i}.json"), table);
        submit(
            &network,
            0,
            &key,
            &["publish-reference", "--payload", payload.to_str().unwrap()],
        );
    }
    let sdk = custody_client::Client::new(&network.url(0)).expect("client");
    let rt = runtime();
    let head = rt.block_on(sdk.status()).expect("status").height;
    let headers: Vec<_> = (1..=head)
        .map(|h| rt.block_on(sdk.block(h)).expect("block").header)
        .collect();
    // The first height with a log that is not a power of two (its proof starts with a hash of
    // the old tree), and the head.
    let old = headers
        .iter()
        .find(|h| h.log_size >= 3 && !h.log_size.is_power_of_two())
        .or_else(|| headers.iter().find(|h| h.log_size >= 1))
        .expect("a block with events")
        .clone();
    let new = headers.last().expect("a head").clone();
    assert!(new.log_size > old.log_size, "{old:?} {new:?}");
    let (from, to) = (old.height.to_string(), new.height.to_string());
    let genesis = network.genesis_file().to_str().expect("path").to_owned();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = ["verify", "consistency", "--from", &from, "--to", &to]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.extend(["--genesis".to_owned(), genesis.clone()]);
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let run = |extra: &[&str]| {
        let all = args(extra);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        report(&network, &all)
    };

    // Valid: what it establishes.
    let (code, valid) = run(&[]);
    assert_eq!(code, Some(0), "{valid}");
    assert_eq!(valid["valid"], true);
    for (side, header) in [("from", &old), ("to", &new)] {
        assert_eq!(valid[side]["height"], header.height, "{valid}");
        assert_eq!(valid[side]["log_size"], header.log_size, "{valid}");
        assert_eq!(valid[side]["log_root"], header.log_root.to_hex(), "{valid}");
        assert_eq!(valid[side]["block_hash"], header.hash().to_hex(), "{valid}");
    }
    let text = {
        let all = args(&[]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        ok(&network, 0, &all)
    };
    assert!(
        text.contains(&format!(
            "valid: the log at height {} extends the log at height {}",
            new.height, old.height
        )),
        "{text}"
    );
    assert!(text.contains(&new.log_root.to_hex()), "{text}");
    assert!(text.contains(&old.log_root.to_hex()), "{text}");

    // The node's answer, saved: valid from the file too; then tampered.
    let answer = rt
        .block_on(sdk.consistency(old.log_size, new.log_size))
        .expect("proof");
    assert!(!answer.proof.is_empty());
    assert_eq!(valid["proof_length"], answer.proof.len());
    let saved = write_json(&files, "proof.json", &answer);
    let (code, out) = run(&["--proof-file", saved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");

    let mut tampered = answer.clone();
    tampered.proof[0].0[0] ^= 1;
    let file = write_json(&files, "tampered.json", &tampered);
    let (code, out) = run(&["--proof-file", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out["valid"], false, "{out}");
    assert_eq!(out["check"], "log.consistency_proof", "{out}");

    let mut short = answer.clone();
    short.proof.pop();
    let file = write_json(&files, "short.json", &short);
    let (code, out) = run(&["--proof-file", file.to_str().unwrap()]);
    assert_eq!(
        (code, &out["check"]),
        (Some(1), &Value::from("log.consistency_proof")),
        "{out}"
    );

    let mut lying = answer.clone();
    lying.to_root.0[31] ^= 1;
    let file = write_json(&files, "root.json", &lying);
    let (code, out) = run(&["--proof-file", file.to_str().unwrap()]);
    assert_eq!(
        (code, &out["check"]),
        (Some(1), &Value::from("consistency.roots")),
        "{out}"
    );

    let mut other = answer.clone();
    other.to -= 1;
    let file = write_json(&files, "range.json", &other);
    let (code, out) = run(&["--proof-file", file.to_str().unwrap()]);
    assert_eq!(
        (code, &out["check"]),
        (Some(1), &Value::from("consistency.range")),
        "{out}"
    );

    let garbage = files.join("garbage.json");
    std::fs::write(&garbage, "{\"from\": 1, \"to\": ").expect("write");
    let (code, out) = run(&["--proof-file", garbage.to_str().unwrap()]);
    assert_eq!(
        (code, &out["check"]),
        (Some(1), &Value::from("consistency.json")),
        "{out}"
    );

    // The same chain id with other validators: the checkpoints are not certified by them.
    let mut other_genesis = net.genesis.clone();
    for (i, member) in other_genesis.members.iter_mut().enumerate() {
        if member.node_key.is_some() {
            member.node_key = Some(Keypair::from_seed([0x70 + i as u8; 32]).public());
        }
    }
    let other_file = write_json(&files, "other-genesis.json", &other_genesis);
    let (code, out) = report(
        &network,
        &[
            "verify",
            "consistency",
            "--from",
            &from,
            "--to",
            &to,
            "--genesis",
            other_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out["check"], "checkpoint.certificate", "{out}");

    // The same height twice: an empty proof.
    let (code, out) = report(
        &network,
        &[
            "verify",
            "consistency",
            "--from",
            &to,
            "--to",
            &to,
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["proof_length"], 0, "{out}");

    // Tool errors: a height above the head, a proof file that cannot be read.
    let beyond = (new.height + 1_000).to_string();
    let (code, out) = report(
        &network,
        &[
            "verify",
            "consistency",
            "--from",
            &from,
            "--to",
            &beyond,
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    let missing = files.join("missing.json");
    let (code, out) = run(&["--proof-file", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}");
    network
        .stop_and_compare()
        .expect("the nodes stop cleanly and agree");
}
