//! Rules inside the ledger: blocks built and validated under the contract rules, the
//! reference book rebuilt from the store, and full verification replaying the rules.

use custody_contracts::{customs, load, ContractRules, ReferenceBook};
use custody_ledger::chain::{validate_block, BlockError};
use custody_ledger::event::{approve, sign, EncodedEvent};
use custody_ledger::keys::KeyCache;
use custody_ledger::keys::Keypair;
use custody_ledger::model::*;
use custody_ledger::rules::NoRules;
use custody_ledger::store::{MemoryStore, Store};
use custody_ledger::testkit::TestNet;
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use custody_sled::SledStore;

const HS_CSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/hs2022/hs2022-codes.csv"
));

fn at(day: u32) -> Timestamp {
    Timestamp::from_date(2026, 11, day).expect("date")
}

/// Reference data as the customs authority publishes it: HS 2022, the de minimis versions,
/// the sample tariffs, and a French tariff (illustrative duty, real 20 % VAT).
fn reference_events(net: &TestNet) -> Vec<EncodedEvent> {
    let mut tables = vec![load::hs_nomenclature(
        "HS2022",
        HS_CSV,
        Timestamp::from_date(2022, 1, 1).expect("date"),
    )
    .expect("HS")];
    tables.extend(load::de_minimis_events());
    tables.extend(
        load::sample_tables(Timestamp::from_date(2026, 1, 1).expect("date"))
            .into_iter()
            .skip(1),
    );
    tables.push(
        load::tariff_from_json(
            r#"{"jurisdiction":"FR","currency":"EUR","vat_rate_ppm":200000,"lines":[{"hs_prefix":"6109","rate":{"ad_valorem":{"rate_ppm":120000}}},{"hs_prefix":"6912","rate":{"ad_valorem":{"rate_ppm":65000}}}]}"#,
            Timestamp::from_date(2025, 1, 1).expect("date"),
        )
        .expect("FR tariff"),
    );
    tables
        .into_iter()
        .map(|t| net.sign("customs-qx", EventKind::ReferenceDataPublished(t)))
        .collect()
}

/// The test kit's lifecycle, with a declaration the contracts accept (computed by
/// `customs::assess`) in place of the test kit's ledger-only one.
fn lifecycle<S: Store + ?Sized>(
    net: &TestNet,
    store: &S,
    rules: &ContractRules,
    id: &str,
) -> Vec<Vec<EncodedEvent>> {
    let events = net.lifecycle(id);
    let reg = events[0].clone();
    // The shipment state after registration, to assess against.
    let mut state = store.load_state(&net.genesis, &events[..1]).expect("state");
    custody_ledger::state::apply(
        &mut state,
        &reg,
        custody_ledger::state::BlockContext {
            height: 1,
            time: at(2),
        },
    )
    .expect("registers");
    let shipment = state
        .shipment(&ShipmentId::new(id))
        .expect("registered")
        .clone();
    let mut decl = CustomsDeclared {
        shipment_id: ShipmentId::new(id),
        declaration_ref: format!("DEC-{id}"),
        jurisdiction: CountryCode::parse("FR").expect("FR"),
        transport_mode: TransportMode::Courier,
        currency: custody_ledger::testkit::eur(),
        valuation_basis: ValuationBasis::CIF,
        customs_value_minor: 0,
        freight_minor: 0,
        insurance_minor: 0,
        exchange_rate: None,
        regime: CustomsRegime::Full,
        lines: vec![
            DeclarationLine {
                invoice_line: 1,
                hs_code: "61091000".into(),
                customs_value_minor: 0,
                duty_minor: 0,
                tax_minor: 0,
            },
            DeclarationLine {
                invoice_line: 2,
                hs_code: "69120000".into(),
                customs_value_minor: 0,
                duty_minor: 0,
                tax_minor: 0,
            },
        ],
        duty_total_minor: 0,
        tax_total_minor: 0,
    };
    let a = customs::assess(
        net.genesis.rules_version_at(1),
        &rules.book,
        at(3),
        &shipment,
        &decl,
        "event",
    )
    .expect("assessable");
    customs::complete(&mut decl, &a);
    let decl = net.sign("broker-clear", EventKind::CustomsDeclared(decl));
    let paid = net.pay(
        "seller-acme",
        id,
        &decl,
        a.duty_total_minor + a.tax_total_minor,
    );
    let cleared = net.clear(id, &decl, ClearanceOutcome::Release);
    vec![
        events[..5].to_vec(),
        vec![decl, paid, cleared],
        events[8..].to_vec(),
    ]
}

#[test]
fn a_ledger_built_under_the_rules_verifies_with_them() {
    let net = TestNet::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), net.genesis_hash()).expect("open");
    let built = net
        .commit_with(
            &store,
            &ContractRules::default(),
            reference_events(&net),
            at(1),
        )
        .expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let mut rules = built.into_rules();
    for (day, block) in lifecycle(&net, &store, &rules, "CHAIN-1")
        .into_iter()
        .enumerate()
    {
        let built = net
            .commit_with(&store, &rules, block, at(2 + day as u32))
            .expect("commit");
        assert!(
            built.rejected.is_empty(),
            "block {day}: {:?}",
            built.rejected
        );
        rules = built.into_rules();
    }
    let shipment = store
        .shipment(&ShipmentId::new("CHAIN-1"))
        .expect("read")
        .expect("exists");
    assert_eq!(
        shipment.status,
        custody_ledger::state::ShipmentStatus::Returned
    );

    // The book a node rebuilds from its store is the one the blocks built up.
    assert_eq!(ReferenceBook::load(&store).expect("load"), rules.book);
    // Verification replays the rules with the reference data from the ledger itself.
    let summary =
        verify_chain(&store, &net.genesis, ContractRules::default(), |_, _| {}).expect("verifies");
    assert_eq!(summary.height, 4);
}

#[test]
fn the_proposer_leaves_out_what_the_rules_reject_and_validators_reject_a_block_with_it() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let rules = net
        .commit_with(
            &store,
            &ContractRules::default(),
            reference_events(&net),
            at(1),
        )
        .expect("commit")
        .into_rules();
    let mut bad = custody_ledger::testkit::registration("BAD-TOTAL", "CN", "FR");
    bad.invoice.total_minor += 1;
    let bad = net.sign("seller-acme", EventKind::ShipmentRegistered(bad));
    let good = net.register("GOOD-1", "CN", "FR");
    let built = net
        .commit_with(&store, &rules, vec![bad.clone(), good.clone()], at(2))
        .expect("commit");
    assert_eq!(built.block().events.len(), 1);
    assert_eq!(built.rejected[0].1.code, "invoice.total_mismatch");

    // A block that a proposer without the rules built around the bad event: the ledger alone
    // accepts it, validators with the rules reject it, naming the event.
    let lax = custody_ledger::chain::build_block(
        &store,
        &net.genesis,
        &NoRules,
        custody_ledger::testkit::verified([bad]),
        at(3),
        net.validator_keys()[0].public(),
    )
    .expect("build");
    assert_eq!(lax.block().events.len(), 1);
    match validate_block(
        &store,
        &net.genesis,
        &rules,
        lax.block().clone(),
        &KeyCache::new(),
    ) {
        Err(BlockError::Event {
            index: 0,
            rejection,
            ..
        }) => assert_eq!(rejection.code, "invoice.total_mismatch"),
        other => panic!("expected the rules to reject event 0, got {other:?}"),
    }
    // Had such a block been committed, verification with the rules reports its height.
    let cert = net.certify(lax.block());
    store.append_block(&lax.validated, &cert).expect("append");
    let err = verify_chain(&store, &net.genesis, ContractRules::default(), |_, _| {})
        .expect_err("rules catch it");
    assert_eq!(err.height, 3, "{err}");
    assert!(err.to_string().contains("invoice.total_mismatch"), "{err}");
    verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect("the ledger alone does not");
}

/// Membership: a key rotation approved by two admins; events signed with the old key before
/// it stay valid in a replay, and the old key signs nothing after it.
#[test]
fn events_signed_before_a_rotation_stay_verifiable() {
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let rules = net
        .commit_with(
            &store,
            &ContractRules::default(),
            reference_events(&net),
            at(1),
        )
        .expect("commit")
        .into_rules();
    let before = net.register("ROT-1", "CN", "FR");
    let rules = net
        .commit_with(&store, &rules, vec![before], at(2))
        .expect("commit")
        .into_rules();
    let new_key = Keypair::from_seed([0x42; 32]);
    let change = MembershipChange::RotateKey {
        member: MemberId::new("seller-acme"),
        new_key: new_key.public(),
    };
    let approvals = vec![approve(
        custody_ledger::testkit::CHAIN_ID,
        &change,
        net.key("admin-2"),
    )];
    let rotate = net.sign(
        "admin-1",
        EventKind::MembershipChanged(MembershipChanged { change, approvals }),
    );
    let rules = net
        .commit_with(&store, &rules, vec![rotate], at(3))
        .expect("commit")
        .into_rules();
    let old = net.register("ROT-2", "CN", "FR");
    let new = EncodedEvent::new(sign(
        net.register("ROT-3", "CN", "FR").into_event().event,
        &new_key,
    ));
    let built = net
        .commit_with(&store, &rules, vec![old, new], at(4))
        .expect("commit");
    assert_eq!(built.block().events.len(), 1);
    assert_eq!(built.rejected[0].1.code, "member.key_rotated");
    verify_chain(&store, &net.genesis, ContractRules::default(), |_, _| {})
        .expect("history verifies");
}

/// Which of the event kinds `kind` is, by a match with no default: a new kind does not compile
/// here until the test below commits one.
fn kind_index(kind: &EventKind) -> usize {
    match kind {
        EventKind::ShipmentRegistered(_) => 0,
        EventKind::HandoffProposed(_) => 1,
        EventKind::HandoffAccepted(_) => 2,
        EventKind::CustomsDeclared(_) => 3,
        EventKind::DutyPaid(_) => 4,
        EventKind::CustomsCleared(_) => 5,
        EventKind::Delivered(_) => 6,
        EventKind::ReturnRequested(_) => 7,
        EventKind::ReturnReceived(_) => 8,
        EventKind::DocumentAttested(_) => 9,
        EventKind::ReferenceDataPublished(_) => 10,
        EventKind::MembershipChanged(_) => 11,
        EventKind::TrackingScanRecorded(_) => 12,
        EventKind::PersonalDataErased(_) => 13,
    }
}
const KIND_COUNT: usize = 14;

/// Issue 18: the proposer's own block, a validator's validation of it and an auditor's
/// verification of the stored chain run one path and agree, on a chain with every event kind:
/// the same header, the same state delta and the same log entries at every height, and a
/// verified head equal to the stored one.
#[test]
fn regression_issue_18_proposer_validator_and_auditor_agree_on_every_event_kind() {
    let net = TestNet::new();
    let proposer = MemoryStore::new(net.genesis_hash());
    let validator = MemoryStore::new(net.genesis_hash());
    let keys = KeyCache::new();
    let mut rules = ContractRules::default();
    let mut validator_rules = ContractRules::default();
    let mut seen = [false; KIND_COUNT];
    let mut commit = |events: Vec<EncodedEvent>, day: u32, rules: &mut ContractRules| {
        let built = custody_ledger::chain::build_block(
            &proposer,
            &net.genesis,
            rules,
            custody_ledger::testkit::verified(events),
            at(day),
            net.validator_keys()[0].public(),
        )
        .expect("build");
        assert_eq!(built.rejected, vec![], "day {day}");
        let validated = validate_block(
            &validator,
            &net.genesis,
            &validator_rules,
            built.block().clone(),
            &keys,
        )
        .expect("the validator accepts the proposer's block");
        assert_eq!(validated.header(), built.header(), "day {day}");
        assert_eq!(validated.delta(), built.delta(), "day {day}");
        assert_eq!(validated.entries(), built.entries(), "day {day}");
        let cert = net.certify(built.block());
        proposer
            .append_block(&built.validated, &cert)
            .expect("append");
        validator.append_block(&validated, &cert).expect("append");
        for e in &built.block().events {
            seen[kind_index(&e.event().event.kind)] = true;
        }
        validator_rules = validated.into_parts().1;
        *rules = built.into_rules();
    };
    commit(reference_events(&net), 1, &mut rules);
    let blocks = lifecycle(&net, &proposer, &rules, "EQ-1");
    for (day, block) in blocks.into_iter().enumerate() {
        commit(block, 2 + day as u32, &mut rules);
    }
    let second = net.lifecycle("EQ-2");
    let attest = net.sign(
        "seller-acme",
        EventKind::DocumentAttested(DocumentAttested {
            shipment_id: ShipmentId::new("EQ-2"),
            document_type: "commercial_invoice".into(),
            document_hash: custody_ledger::Digest::sha256(b"the invoice as a PDF"),
            reference: "INV-EQ-2".into(),
        }),
    );
    let scan = net.scan("carrier-swift", "EQ-2", "CNSHA");
    commit(vec![second[0].clone(), attest], 6, &mut rules);
    commit(
        vec![second[1].clone(), second[2].clone(), scan],
        7,
        &mut rules,
    );
    let change = MembershipChange::Admit {
        member: Member {
            id: MemberId::new("carrier-eq"),
            name: "Equivalence Freight".into(),
            roles: vec![Role::Carrier],
            key: Keypair::from_seed([0x18; 32]).public(),
        },
    };
    let approvals = vec![approve(
        custody_ledger::testkit::CHAIN_ID,
        &change,
        net.key("admin-2"),
    )];
    let admit = net.sign(
        "admin-1",
        EventKind::MembershipChanged(MembershipChanged { change, approvals }),
    );
    let erase = net.erase_personal("seller-acme", "EQ-1");
    commit(vec![admit, erase], 8, &mut rules);
    assert_eq!(seen, [true; KIND_COUNT], "every event kind is on the chain");

    let head = proposer.head().expect("head").expect("blocks");
    assert_eq!(validator.head().expect("head"), Some(head));
    let summary = verify_chain(&proposer, &net.genesis, ContractRules::default(), |_, _| {})
        .expect("the auditor verifies what the validators accepted");
    assert_eq!(
        (
            summary.height,
            summary.head_hash,
            summary.log_size,
            summary.log_root
        ),
        (head.height, head.block_hash, head.log_size, head.log_root)
    );
}
