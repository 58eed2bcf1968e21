//! Table-driven tests of the custody state machine: every transition accepted where it
//! should be and rejected, with its stable code, where it should not.

use custody_ledger::event::{approve, EncodedEvent};
use custody_ledger::keys::Keypair;
use custody_ledger::model::*;
use custody_ledger::reject::{codes, Code};
use custody_ledger::state::{apply, BlockContext, ShipmentStatus, State};
use custody_ledger::testkit::{eur, TestNet, GENESIS_TIME};
use custody_ledger::Timestamp;

const S: &str = "SHP-1";

fn ctx() -> BlockContext {
    BlockContext {
        height: 1,
        time: Timestamp(GENESIS_TIME.0 + 60_000),
    }
}

/// Applies `prefix` (each must pass), then `event`; returns the state and the verdict.
fn run(net: &TestNet, prefix: &[EncodedEvent], event: &EncodedEvent) -> (State, Result<(), Code>) {
    let mut state = State::from_genesis(&net.genesis);
    for (i, e) in prefix.iter().enumerate() {
        if let Err(r) = apply(&mut state, e, ctx()) {
            panic!(
                "prefix event {i} ({}) was rejected: {r}",
                e.event().event.kind.name()
            );
        }
    }
    let before = state.shipment(&ShipmentId::new(S)).cloned();
    let verdict = apply(&mut state, event, ctx()).map_err(|r| {
        assert!(
            !r.message.is_empty() && !r.field.is_empty(),
            "rejection names a field: {r:?}"
        );
        r.code
    });
    if verdict.is_err() {
        assert_eq!(
            state.shipment(&ShipmentId::new(S)).cloned(),
            before,
            "a rejected event changed the shipment"
        );
    }
    (state, verdict)
}

fn status(state: &State) -> ShipmentStatus {
    state
        .shipment(&ShipmentId::new(S))
        .expect("registered")
        .status
}

fn custodian(state: &State) -> String {
    state
        .shipment(&ShipmentId::new(S))
        .expect("registered")
        .custodian
        .0
        .clone()
}

/// The lifecycle of the test kit, by step name.
struct Steps {
    all: Vec<EncodedEvent>,
}

impl Steps {
    fn new(net: &TestNet) -> Steps {
        Steps {
            all: net.lifecycle(S),
        }
    }
    /// Events before step `n` (0 = registration).
    fn before(&self, n: usize) -> &[EncodedEvent] {
        &self.all[..n]
    }
    fn step(&self, n: usize) -> &EncodedEvent {
        &self.all[n]
    }
}

const REG: usize = 0;
const PROPOSE: usize = 1;
const ACCEPT: usize = 2;
const PROPOSE_LAST_MILE: usize = 3;
const ACCEPT_LAST_MILE: usize = 4;
const DECLARE: usize = 5;
const PAY: usize = 6;
const CLEAR: usize = 7;
const DELIVER: usize = 8;
const REQUEST_RETURN: usize = 9;
const RECEIVE_RETURN: usize = 10;

#[test]
fn the_happy_path_moves_through_every_status() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let expected = [
        (REG, ShipmentStatus::Registered, "seller-acme"),
        (PROPOSE, ShipmentStatus::Registered, "seller-acme"),
        (ACCEPT, ShipmentStatus::InTransit, "carrier-swift"),
        (
            PROPOSE_LAST_MILE,
            ShipmentStatus::InTransit,
            "carrier-swift",
        ),
        (
            ACCEPT_LAST_MILE,
            ShipmentStatus::InTransit,
            "carrier-lastmile",
        ),
        (DECLARE, ShipmentStatus::AtCustoms, "carrier-lastmile"),
        (PAY, ShipmentStatus::AtCustoms, "carrier-lastmile"),
        (CLEAR, ShipmentStatus::Released, "carrier-lastmile"),
        (DELIVER, ShipmentStatus::Delivered, "carrier-lastmile"),
        (
            REQUEST_RETURN,
            ShipmentStatus::ReturnRequested,
            "carrier-lastmile",
        ),
        (RECEIVE_RETURN, ShipmentStatus::Returned, "carrier-lastmile"),
    ];
    for (n, want_status, want_custodian) in expected {
        let (state, verdict) = run(&net, steps.before(n), steps.step(n));
        assert_eq!(verdict, Ok(()), "step {n}");
        assert_eq!(status(&state), want_status, "step {n}");
        assert_eq!(custodian(&state), want_custodian, "step {n}");
    }
}

#[test]
fn held_shipment_is_released_after_payment() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let decl = steps.step(DECLARE);
    let hold = net.clear(S, decl, ClearanceOutcome::Hold);
    let mut prefix = steps.before(DECLARE + 1).to_vec();
    let (state, verdict) = run(&net, &prefix, &hold);
    assert_eq!(verdict, Ok(()));
    assert_eq!(status(&state), ShipmentStatus::Held);
    prefix.push(hold);

    // While held: no handoff proposal, payment allowed, release once paid.
    let propose = net.propose("carrier-lastmile", S, "carrier-swift");
    assert_eq!(
        run(&net, &prefix, &propose).1,
        Err(codes::CUSTODY_HELD_BY_CUSTOMS)
    );
    let release_unpaid = net.clear(S, decl, ClearanceOutcome::Release);
    assert_eq!(
        run(&net, &prefix, &release_unpaid).1,
        Err(codes::CUSTOMS_UNPAID)
    );
    let pay = net.pay("seller-acme", S, decl, 5_360);
    prefix.push(pay);
    let (state, verdict) = run(&net, &prefix, &release_unpaid);
    assert_eq!(verdict, Ok(()));
    assert_eq!(status(&state), ShipmentStatus::Released);
}

#[test]
fn release_in_a_transit_country_keeps_the_shipment_in_transit() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let decl = net.declare(S, "DE", 0, 0);
    let clear = net.clear(S, &decl, ClearanceOutcome::Release);
    let mut prefix = steps.before(ACCEPT + 1).to_vec();
    prefix.push(decl);
    let (state, verdict) = run(&net, &prefix, &clear);
    assert_eq!(verdict, Ok(()));
    assert_eq!(status(&state), ShipmentStatus::InTransit);
    // Not released in the destination (FR): no delivery yet.
    prefix.push(clear);
    let deliver = net.deliver("carrier-swift", S);
    assert_eq!(
        run(&net, &prefix, &deliver).1,
        Err(codes::DELIVERY_NOT_RELEASED)
    );
}

#[test]
fn a_domestic_shipment_is_delivered_without_customs() {
    let net = TestNet::new();
    let reg = net.register(S, "FR", "FR");
    let p = net.propose("seller-acme", S, "carrier-swift");
    let a = net.accept("carrier-swift", S, &p);
    let (state, verdict) = run(&net, &[reg, p, a], &net.deliver("carrier-swift", S));
    assert_eq!(verdict, Ok(()));
    assert_eq!(status(&state), ShipmentStatus::Delivered);
}

fn attest(net: &TestNet, by: &str) -> EncodedEvent {
    net.sign(
        by,
        EventKind::DocumentAttested(DocumentAttested {
            shipment_id: ShipmentId::new(S),
            document_type: "certificate_of_origin".into(),
            document_hash: custody_ledger::Digest::sha256(b"coo"),
            reference: "COO-1".into(),
        }),
    )
}

fn reference(net: &TestNet, by: &str) -> EncodedEvent {
    net.sign(
        by,
        EventKind::ReferenceDataPublished(ReferenceDataPublished {
            table_id: "hs/HS2022".into(),
            effective_from: GENESIS_TIME,
            data: ReferenceData::HsNomenclature(HsNomenclature {
                edition: "HS2022".into(),
                subheadings: vec!["610910".into(), "691200".into()],
            }),
        }),
    )
}

#[test]
fn rejections_table() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let outsider = Keypair::from_seed([0x77; 32]);
    let outsider_event = EncodedEvent::new(custody_ledger::event::sign(
        Event {
            chain_id: "custody-test".into(),
            occurred_at: GENESIS_TIME,
            kind: EventKind::ShipmentRegistered(custody_ledger::testkit::registration(
                S, "CN", "FR",
            )),
        },
        &outsider,
    ));
    let wrong_currency = {
        let mut e = net
            .pay("seller-acme", S, steps.step(DECLARE), 100)
            .into_event();
        if let EventKind::DutyPaid(p) = &mut e.event.kind {
            p.amount.currency = CurrencyCode::parse("USD").expect("USD");
        }
        // Re-sign the modified body.
        net.sign("seller-acme", e.event.kind)
    };
    let p_to_lastmile = net.propose("seller-acme", S, "carrier-lastmile");

    type Case<'a> = (&'a str, Vec<EncodedEvent>, EncodedEvent, Code);
    let cases: Vec<Case<'_>> = vec![
        (
            "registration by a carrier",
            vec![],
            net.sign(
                "carrier-swift",
                EventKind::ShipmentRegistered(custody_ledger::testkit::registration(S, "CN", "FR")),
            ),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "registration twice",
            steps.before(PROPOSE).to_vec(),
            net.sign_at(
                "seller-acme",
                EventKind::ShipmentRegistered(custody_ledger::testkit::registration(S, "CN", "FR")),
                Timestamp(1),
            ),
            codes::SHIPMENT_EXISTS,
        ),
        (
            "event by a non-member key",
            vec![],
            outsider_event,
            codes::MEMBER_UNKNOWN_SIGNER,
        ),
        (
            "handoff of an unknown shipment",
            vec![],
            steps.step(PROPOSE).clone(),
            codes::SHIPMENT_UNKNOWN,
        ),
        (
            "handoff to a non-member",
            steps.before(PROPOSE).to_vec(),
            net.propose("seller-acme", S, "carrier-ghost"),
            codes::CUSTODY_RECEIVER_NOT_MEMBER,
        ),
        (
            "handoff to an auditor",
            steps.before(PROPOSE).to_vec(),
            net.propose("seller-acme", S, "auditor-ivy"),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "handoff by a non-custodian",
            steps.before(PROPOSE).to_vec(),
            net.propose("carrier-swift", S, "carrier-lastmile"),
            codes::CUSTODY_NOT_CUSTODIAN,
        ),
        (
            "handoff to oneself",
            steps.before(PROPOSE).to_vec(),
            net.propose("seller-acme", S, "seller-acme"),
            codes::CUSTODY_SELF_HANDOFF,
        ),
        (
            "acceptance by the wrong party",
            steps.before(ACCEPT).to_vec(),
            net.accept("carrier-lastmile", S, steps.step(PROPOSE)),
            codes::CUSTODY_NOT_RECEIVER,
        ),
        (
            "double acceptance",
            steps.before(ACCEPT + 1).to_vec(),
            net.sign_at(
                "carrier-swift",
                steps.step(ACCEPT).event().event.kind.clone(),
                Timestamp(1),
            ),
            codes::CUSTODY_NO_PENDING_HANDOFF,
        ),
        (
            "acceptance of a superseded proposal",
            {
                let mut p = steps.before(ACCEPT).to_vec();
                p.push(p_to_lastmile.clone());
                p
            },
            steps.step(ACCEPT).clone(),
            codes::CUSTODY_NO_PENDING_HANDOFF,
        ),
        (
            "acceptance with nothing pending",
            steps.before(PROPOSE).to_vec(),
            steps.step(ACCEPT).clone(),
            codes::CUSTODY_NO_PENDING_HANDOFF,
        ),
        (
            "declaration by a seller",
            steps.before(DECLARE).to_vec(),
            net.sign(
                "seller-acme",
                steps.step(DECLARE).event().event.kind.clone(),
            ),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "declaration before pickup",
            steps.before(PROPOSE).to_vec(),
            steps.step(DECLARE).clone(),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "payment for another declaration",
            steps.before(PAY).to_vec(),
            net.pay("seller-acme", S, steps.step(ACCEPT), 100),
            codes::CUSTOMS_UNKNOWN_DECLARATION,
        ),
        (
            "payment in the wrong currency",
            steps.before(PAY).to_vec(),
            wrong_currency,
            codes::DUTY_CURRENCY_MISMATCH,
        ),
        (
            "overpayment",
            steps.before(PAY).to_vec(),
            net.pay("seller-acme", S, steps.step(DECLARE), 5_361),
            codes::DUTY_OVERPAID,
        ),
        (
            "payment before declaration",
            steps.before(DECLARE).to_vec(),
            steps.step(PAY).clone(),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "release before payment",
            steps.before(PAY).to_vec(),
            steps.step(CLEAR).clone(),
            codes::CUSTOMS_UNPAID,
        ),
        (
            "clearance by a carrier",
            steps.before(CLEAR).to_vec(),
            net.sign(
                "carrier-swift",
                steps.step(CLEAR).event().event.kind.clone(),
            ),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "delivery by a non-custodian",
            steps.before(DELIVER).to_vec(),
            net.deliver("carrier-swift", S),
            codes::CUSTODY_NOT_CUSTODIAN,
        ),
        (
            "delivery by a non-carrier",
            steps.before(PROPOSE).to_vec(),
            net.deliver("seller-acme", S),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "delivery before release",
            steps.before(DECLARE).to_vec(),
            net.deliver("carrier-lastmile", S),
            codes::DELIVERY_NOT_RELEASED,
        ),
        (
            "delivery twice",
            steps.before(DELIVER + 1).to_vec(),
            net.sign_at(
                "carrier-lastmile",
                steps.step(DELIVER).event().event.kind.clone(),
                Timestamp(1),
            ),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "handoff after delivery",
            steps.before(DELIVER + 1).to_vec(),
            net.propose("carrier-lastmile", S, "carrier-swift"),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "return before delivery",
            steps.before(DELIVER).to_vec(),
            steps.step(REQUEST_RETURN).clone(),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "return requested by a carrier",
            steps.before(REQUEST_RETURN).to_vec(),
            net.sign(
                "carrier-lastmile",
                steps.step(REQUEST_RETURN).event().event.kind.clone(),
            ),
            codes::RETURN_NOT_SELLER,
        ),
        (
            "return of more than shipped",
            steps.before(REQUEST_RETURN).to_vec(),
            net.request_return(S, "RMA-X", 11),
            codes::RETURN_BAD_LINES,
        ),
        (
            "return of zero units",
            steps.before(REQUEST_RETURN).to_vec(),
            net.request_return(S, "RMA-X", 0),
            codes::RETURN_BAD_LINES,
        ),
        (
            "RMA used twice",
            steps.before(REQUEST_RETURN + 1).to_vec(),
            net.sign_at(
                "seller-acme",
                steps.step(REQUEST_RETURN).event().event.kind.clone(),
                Timestamp(1),
            ),
            codes::RETURN_BAD_RMA,
        ),
        (
            "receipt under an unknown RMA",
            steps.before(RECEIVE_RETURN).to_vec(),
            net.receive_return(S, "RMA-NOPE", 1),
            codes::RETURN_BAD_RMA,
        ),
        (
            "receipt of more than authorised",
            steps.before(RECEIVE_RETURN).to_vec(),
            net.receive_return(S, &format!("RMA-{S}"), 2),
            codes::RETURN_BAD_LINES,
        ),
        (
            "receipt before any request",
            steps.before(REQUEST_RETURN).to_vec(),
            steps.step(RECEIVE_RETURN).clone(),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "replayed event",
            steps.before(PROPOSE + 1).to_vec(),
            steps.step(PROPOSE).clone(),
            codes::EVENT_DUPLICATE,
        ),
        (
            "attestation about an unknown shipment",
            vec![],
            attest(&net, "auditor-ivy"),
            codes::SHIPMENT_UNKNOWN,
        ),
        (
            "reference data by a seller",
            vec![],
            reference(&net, "seller-acme"),
            codes::MEMBER_MISSING_ROLE,
        ),
        (
            "reference data published twice",
            vec![reference(&net, "customs-qx")],
            net.sign_at(
                "customs-qx",
                reference(&net, "customs-qx").into_event().event.kind,
                Timestamp(1),
            ),
            codes::REFERENCE_DUPLICATE,
        ),
    ];
    assert!(cases.len() >= 35);
    for (name, prefix, event, code) in cases {
        let (_, verdict) = run(&net, &prefix, &event);
        assert_eq!(verdict, Err(code), "{name}");
    }
}

#[test]
fn attestations_and_reference_data_are_accepted() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    assert_eq!(
        run(&net, steps.before(PROPOSE), &attest(&net, "auditor-ivy")).1,
        Ok(())
    );
    let (state, verdict) = run(&net, &[], &reference(&net, "customs-qx"));
    assert_eq!(verdict, Ok(()));
    assert!(state
        .reference_in_force("hs/HS2022", GENESIS_TIME)
        .is_some());
    assert!(state
        .reference_in_force("hs/HS2022", Timestamp(GENESIS_TIME.0 - 1))
        .is_none());
}

fn membership(
    net: &TestNet,
    signer: &str,
    change: MembershipChange,
    approvers: &[&str],
) -> EncodedEvent {
    let approvals = approvers
        .iter()
        .map(|a| approve("custody-test", &change, net.key(a)))
        .collect();
    net.sign(
        signer,
        EventKind::MembershipChanged(MembershipChanged { change, approvals }),
    )
}

#[test]
fn membership_changes_need_the_admin_quorum() {
    let net = TestNet::new();
    let newcomer = Keypair::from_seed([0x55; 32]);
    let admit = MembershipChange::Admit {
        member: Member {
            id: MemberId::new("carrier-new"),
            name: "New Carrier".into(),
            roles: vec![Role::Carrier],
            key: newcomer.public(),
        },
    };
    // One admin alone is below the quorum of two.
    let alone = membership(&net, "admin-1", admit.clone(), &[]);
    assert_eq!(run(&net, &[], &alone).1, Err(codes::MEMBERSHIP_QUORUM));
    // The signer approving itself again does not count twice.
    let twice = membership(&net, "admin-1", admit.clone(), &["admin-1"]);
    assert_eq!(run(&net, &[], &twice).1, Err(codes::MEMBERSHIP_QUORUM));
    // A non-admin's approval is refused.
    let bad = membership(&net, "admin-1", admit.clone(), &["seller-acme"]);
    assert_eq!(run(&net, &[], &bad).1, Err(codes::MEMBERSHIP_BAD_APPROVAL));
    // A non-admin cannot propose.
    let by_seller = membership(&net, "seller-acme", admit.clone(), &["admin-1", "admin-2"]);
    assert_eq!(
        run(&net, &[], &by_seller).1,
        Err(codes::MEMBER_MISSING_ROLE)
    );
    // An approval over another change does not verify.
    let mut forged = membership(&net, "admin-1", admit.clone(), &["admin-2"]).into_event();
    if let EventKind::MembershipChanged(m) = &mut forged.event.kind {
        m.approvals[0].signature = approve("other-chain", &admit, net.key("admin-2")).signature;
    }
    let forged = net.sign("admin-1", forged.event.kind);
    assert_eq!(
        run(&net, &[], &forged).1,
        Err(codes::MEMBERSHIP_BAD_APPROVAL)
    );

    let ok = membership(&net, "admin-1", admit.clone(), &["admin-2"]);
    let (state, verdict) = run(&net, &[], &ok);
    assert_eq!(verdict, Ok(()));
    assert!(state.member(&MemberId::new("carrier-new")).is_some());
    assert_eq!(
        run(
            &net,
            std::slice::from_ref(&ok),
            &membership(&net, "admin-2", admit, &["admin-3"])
        )
        .1,
        Err(codes::MEMBER_EXISTS)
    );

    // A weak key cannot be admitted.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = MembershipChange::Admit {
        member: Member {
            id: MemberId::new("weakling"),
            name: "Weak".into(),
            roles: vec![Role::Carrier],
            key: custody_ledger::PublicKey(identity),
        },
    };
    assert_eq!(
        run(&net, &[], &membership(&net, "admin-1", weak, &["admin-2"])).1,
        Err(codes::SIGNATURE_BAD_KEY)
    );
    let ghost = MembershipChange::Revoke {
        member: MemberId::new("ghost"),
        reason: "x".into(),
    };
    assert_eq!(
        run(&net, &[], &membership(&net, "admin-1", ghost, &["admin-2"])).1,
        Err(codes::MEMBER_NOT_FOUND)
    );
}

#[test]
fn rules_versions_are_scheduled_by_the_admin_quorum_for_a_future_height_only() {
    let net = TestNet::new();
    let schedule = |version, from_height| MembershipChange::ScheduleRules {
        activation: RulesActivation {
            version,
            from_height,
        },
    };
    // ctx() is height 1, under genesis's version 1 from height 1.
    assert_eq!(State::from_genesis(&net.genesis).rules_version_at(1), 1);

    // The quorum applies as to membership, and approvals of one change do not carry over to
    // another (the approval message covers the activation).
    let alone = membership(&net, "admin-1", schedule(2, 10), &[]);
    assert_eq!(run(&net, &[], &alone).1, Err(codes::MEMBERSHIP_QUORUM));
    let mut swapped = membership(&net, "admin-1", schedule(2, 10), &["admin-2"]).into_event();
    if let EventKind::MembershipChanged(m) = &mut swapped.event.kind {
        m.approvals[0].signature = approve(
            custody_ledger::testkit::CHAIN_ID,
            &schedule(2, 11),
            net.key("admin-2"),
        )
        .signature;
    }
    let swapped = net.sign("admin-1", swapped.event.kind);
    assert_eq!(
        run(&net, &[], &swapped).1,
        Err(codes::MEMBERSHIP_BAD_APPROVAL)
    );
    let by_seller = membership(
        &net,
        "seller-acme",
        schedule(2, 10),
        &["admin-1", "admin-2"],
    );
    assert_eq!(
        run(&net, &[], &by_seller).1,
        Err(codes::MEMBER_MISSING_ROLE)
    );

    // Not this block nor an earlier one: committed verdicts must not move.
    for height in [0, 1] {
        let past = membership(&net, "admin-1", schedule(2, height), &["admin-2"]);
        assert_eq!(
            run(&net, &[], &past).1,
            Err(codes::RULES_SCHEDULE_NOT_FUTURE),
            "height {height}"
        );
    }
    // Not an old version again, nor the same one.
    let same = membership(&net, "admin-1", schedule(1, 10), &["admin-2"]);
    assert_eq!(run(&net, &[], &same).1, Err(codes::RULES_SCHEDULE_ORDER));

    let ok = membership(&net, "admin-1", schedule(2, 10), &["admin-2"]);
    let (mut state, verdict) = run(&net, &[], &ok);
    assert_eq!(verdict, Ok(()));
    assert_eq!(
        (state.rules_version_at(9), state.rules_version_at(10)),
        (1, 2)
    );
    // The activation is part of the block's delta, so the state root commits to it.
    assert_eq!(
        state.take_delta().rules_schedule,
        vec![RulesActivation {
            version: 2,
            from_height: 10
        }]
    );
    // A later activation must come after it, in height and in version.
    let earlier = membership(&net, "admin-2", schedule(3, 10), &["admin-3"]);
    assert_eq!(
        run(&net, std::slice::from_ref(&ok), &earlier).1,
        Err(codes::RULES_SCHEDULE_ORDER)
    );
    let older = membership(&net, "admin-2", schedule(2, 20), &["admin-3"]);
    assert_eq!(
        run(&net, std::slice::from_ref(&ok), &older).1,
        Err(codes::RULES_SCHEDULE_ORDER)
    );
    let next = membership(&net, "admin-2", schedule(3, 20), &["admin-3"]);
    assert_eq!(run(&net, std::slice::from_ref(&ok), &next).1, Ok(()));
}

#[test]
fn rotated_and_revoked_keys_sign_nothing_more() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let new_key = Keypair::from_seed([0x66; 32]);
    let rotate = membership(
        &net,
        "admin-1",
        MembershipChange::RotateKey {
            member: MemberId::new("carrier-swift"),
            new_key: new_key.public(),
        },
        &["admin-2"],
    );
    let mut prefix = steps.before(ACCEPT).to_vec();
    prefix.push(rotate);
    // The old key is refused; the same acceptance signed with the new key passes, and
    // custody (held by member id) is unaffected.
    assert_eq!(
        run(&net, &prefix, steps.step(ACCEPT)).1,
        Err(codes::MEMBER_KEY_ROTATED)
    );
    let with_new_key = EncodedEvent::new(custody_ledger::event::sign(
        steps.step(ACCEPT).event().event.clone(),
        &new_key,
    ));
    let (state, verdict) = run(&net, &prefix, &with_new_key);
    assert_eq!(verdict, Ok(()));
    assert_eq!(custodian(&state), "carrier-swift");

    let revoke = membership(
        &net,
        "admin-2",
        MembershipChange::Revoke {
            member: MemberId::new("carrier-swift"),
            reason: "left".into(),
        },
        &["admin-3"],
    );
    let mut prefix = steps.before(ACCEPT).to_vec();
    prefix.push(revoke);
    assert_eq!(
        run(&net, &prefix, steps.step(ACCEPT)).1,
        Err(codes::MEMBER_REVOKED)
    );
    // Nor can a revoked member receive custody.
    let mut prefix = steps.before(PROPOSE).to_vec();
    prefix.push(membership(
        &net,
        "admin-2",
        MembershipChange::Revoke {
            member: MemberId::new("carrier-swift"),
            reason: "left".into(),
        },
        &["admin-3"],
    ));
    assert_eq!(
        run(&net, &prefix, steps.step(PROPOSE)).1,
        Err(codes::CUSTODY_RECEIVER_NOT_MEMBER)
    );
}

#[test]
fn the_overpayment_check_counts_earlier_payments() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let decl = steps.step(DECLARE);
    let mut prefix = steps.before(PAY).to_vec();
    prefix.push(net.pay("seller-acme", S, decl, 5_000));
    assert_eq!(
        run(&net, &prefix, &net.pay("seller-acme", S, decl, 361)).1,
        Err(codes::DUTY_OVERPAID)
    );
    assert_eq!(
        run(&net, &prefix, &net.pay("seller-acme", S, decl, 360)).1,
        Ok(())
    );
    let _ = eur();
}

/// A tracking scan of `S` by `by`, with `change` applied to the test kit's payload.
fn scan_with(net: &TestNet, by: &str, change: impl Fn(&mut TrackingScanRecorded)) -> EncodedEvent {
    let mut payload = custody_ledger::testkit::tracking_scan(S, "DEHAM");
    change(&mut payload);
    net.sign(by, EventKind::TrackingScanRecorded(payload))
}

#[test]
fn the_custodian_and_any_carrier_may_scan_and_custody_does_not_move() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    // A pending handoff (seller → air carrier) stays pending through scans.
    let prefix = steps.before(ACCEPT);
    let (before, _) = run(&net, prefix, &attest(&net, "auditor-ivy"));
    let before = before
        .shipment(&ShipmentId::new(S))
        .expect("registered")
        .clone();
    for (who, scan) in [
        // The seller holds it.
        ("custodian", net.scan("seller-acme", S, "CNSHA")),
        // A carrier that does not hold it (a hub scanning it for the custodian).
        ("another carrier", net.scan("carrier-lastmile", S, "CNSHA")),
        // The whole shipment, no parcel named.
        (
            "whole shipment",
            scan_with(&net, "carrier-swift", |s| s.parcels.clear()),
        ),
    ] {
        let (state, verdict) = run(&net, prefix, &scan);
        assert_eq!(verdict, Ok(()), "{who}");
        let after = state.shipment(&ShipmentId::new(S)).expect("registered");
        assert_eq!(after.custodian, before.custodian, "{who}");
        assert_eq!(after.status, before.status, "{who}");
        assert_eq!(after.pending_handoff, before.pending_handoff, "{who}");
        assert_eq!(after.last_place, before.last_place, "{who}");
        assert_eq!(after.event_count, before.event_count, "{who}");
        assert_eq!(after.last_event, scan.id(), "{who}");
        assert_eq!(after.updated_at, ctx().time, "{who}");
    }
    // The pending handoff is still the one to accept after a scan.
    let mut prefix = prefix.to_vec();
    prefix.push(net.scan("carrier-lastmile", S, "CNSHA"));
    let (state, verdict) = run(&net, &prefix, steps.step(ACCEPT));
    assert_eq!(verdict, Ok(()));
    assert_eq!(custodian(&state), "carrier-swift");
    // The custodian carrier scans in transit; status and custodian stay.
    let (state, verdict) = run(
        &net,
        steps.before(ACCEPT + 1),
        &net.scan("carrier-swift", S, "CNSHA"),
    );
    assert_eq!(verdict, Ok(()));
    assert_eq!(custodian(&state), "carrier-swift");
    assert_eq!(status(&state), ShipmentStatus::InTransit);
}

#[test]
fn scans_are_accepted_until_delivery_and_on_the_return_leg() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let scan = net.scan("carrier-lastmile", S, "FRPAR");
    for n in [
        PROPOSE,
        ACCEPT,
        DECLARE + 1,
        PAY + 1,
        CLEAR + 1,
        DELIVER,
        RECEIVE_RETURN,
    ] {
        assert_eq!(
            run(&net, steps.before(n), &scan).1,
            Ok(()),
            "before step {n}"
        );
    }
    // Held by customs: scans (holding, inspecting) go on.
    let hold = net.clear(S, steps.step(DECLARE), ClearanceOutcome::Hold);
    let mut prefix = steps.before(DECLARE + 1).to_vec();
    prefix.push(hold);
    let (state, verdict) = run(&net, &prefix, &scan);
    assert_eq!(verdict, Ok(()));
    assert_eq!(status(&state), ShipmentStatus::Held);
}

#[test]
fn scan_rejections() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    let in_transit = steps.before(ACCEPT + 1).to_vec();
    let scanned = [
        in_transit.clone(),
        vec![net.scan("carrier-swift", S, "DEHAM")],
    ]
    .concat();
    let cases: Vec<(&str, Vec<EncodedEvent>, EncodedEvent, Code)> = vec![
        (
            "scan of an unknown shipment",
            vec![],
            net.scan("carrier-swift", S, "DEHAM"),
            codes::SHIPMENT_UNKNOWN,
        ),
        (
            "scan by the seller after handing the shipment on",
            in_transit.clone(),
            net.scan("seller-acme", S, "DEHAM"),
            codes::SCAN_NOT_ALLOWED,
        ),
        (
            "scan by a broker that does not hold it",
            in_transit.clone(),
            net.scan("broker-clear", S, "DEHAM"),
            codes::SCAN_NOT_ALLOWED,
        ),
        (
            "scan by an auditor",
            in_transit.clone(),
            net.scan("auditor-ivy", S, "DEHAM"),
            codes::SCAN_NOT_ALLOWED,
        ),
        (
            "scan of a parcel the shipment does not have",
            in_transit.clone(),
            scan_with(&net, "carrier-swift", |s| {
                s.parcels.push("106141411234567880".into())
            }),
            codes::SCAN_UNKNOWN_PARCEL,
        ),
        (
            "scan after delivery",
            steps.before(DELIVER + 1).to_vec(),
            net.scan("carrier-lastmile", S, "FRPAR"),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "scan after every return came back",
            steps.before(RECEIVE_RETURN + 1).to_vec(),
            net.scan("carrier-lastmile", S, "FRPAR"),
            codes::SHIPMENT_WRONG_STATE,
        ),
        (
            "replayed scan",
            scanned,
            net.scan("carrier-swift", S, "DEHAM"),
            codes::EVENT_DUPLICATE,
        ),
    ];
    for (name, prefix, event, code) in cases {
        assert_eq!(run(&net, &prefix, &event).1, Err(code), "{name}");
    }
    // The unknown parcel is named by its index.
    let mut state = State::from_genesis(&net.genesis);
    for e in &in_transit {
        apply(&mut state, e, ctx()).expect("prefix");
    }
    let bad = scan_with(&net, "carrier-swift", |s| {
        s.parcels.insert(0, "106141411234567880".into())
    });
    let rejection = apply(&mut state, &bad, ctx()).expect_err("unknown parcel");
    assert_eq!(
        rejection.field,
        "event.kind.TrackingScanRecorded.parcels[0]"
    );
}

/// The state a node loads for a block holds the registered parcels of a scanned shipment,
/// read from its registration event, so the same scan gets the same verdict in a block
/// built over a store as in a replay from genesis.
#[test]
fn scans_in_blocks_are_checked_against_the_stored_registration() {
    use custody_ledger::store::{MemoryStore, Store};
    let net = TestNet::new();
    let store = MemoryStore::new(net.genesis_hash());
    let at = |s: u64| Timestamp(GENESIS_TIME.0 + s * 1_000);
    let steps = Steps::new(&net);
    let built = net
        .commit(&store, steps.before(ACCEPT + 1).to_vec(), at(1))
        .expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let good = net.scan("carrier-lastmile", S, "DEHAM");
    let bad = scan_with(&net, "carrier-swift", |s| {
        s.parcels = vec!["106141411234567880".into()]
    });
    let built = net
        .commit(&store, vec![good.clone(), bad.clone()], at(2))
        .expect("commit");
    assert_eq!(built.block().events.len(), 1);
    assert_eq!(built.block().events[0].id(), good.id());
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, bad.id());
    assert_eq!(built.rejected[0].1.code, codes::SCAN_UNKNOWN_PARCEL);
    // A registration and a scan of it in one block.
    let reg = net.register("SHP-2", "CN", "FR");
    let scan2 = net.scan("carrier-swift", "SHP-2", "CNSHA");
    let built = net.commit(&store, vec![reg, scan2], at(3)).expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let s = store
        .shipment(&ShipmentId::new(S))
        .expect("read")
        .expect("exists");
    assert_eq!(s.custodian.as_str(), "carrier-swift");
    assert_eq!(s.last_event, good.id());
    custody_ledger::verify::verify_chain(
        &store,
        &net.genesis,
        custody_ledger::rules::NoRules,
        |_, _| {},
    )
    .expect("the chain verifies");
}

/// `PersonalDataErased`: by the shipment's seller or an admin, in every status, once; it sets
/// `personal_erased` and counts as an event, and changes nothing else.
#[test]
fn personal_data_erasure() {
    let net = TestNet::new();
    let steps = Steps::new(&net);
    // Accepted in every status, by the seller and by an admin.
    for n in 1..=steps.all.len() {
        for by in ["seller-acme", "admin-2"] {
            let erase = net.erase_personal(by, S);
            let (state, verdict) = run(&net, steps.before(n), &erase);
            assert_eq!(verdict, Ok(()), "after {n} step(s), by {by}");
            let before = {
                let (state, _) = run(&net, steps.before(n - 1), steps.step(n - 1));
                state
                    .shipment(&ShipmentId::new(S))
                    .cloned()
                    .expect("registered")
            };
            let after = state
                .shipment(&ShipmentId::new(S))
                .cloned()
                .expect("registered");
            assert!(after.personal_erased);
            assert!(!before.personal_erased);
            assert_eq!(after.status, before.status);
            assert_eq!(after.custodian, before.custodian);
            assert_eq!(after.pending_handoff, before.pending_handoff);
            assert_eq!(after.last_place, before.last_place);
            assert_eq!(after.event_count, before.event_count + 1);
            assert_eq!(after.last_event, erase.id());
            assert_eq!(after.updated_at, ctx().time);
        }
    }
    let registered = steps.before(REG + 1).to_vec();
    let erased = [
        registered.clone(),
        vec![net.erase_personal("seller-acme", S)],
    ]
    .concat();
    let cases: Vec<(&str, Vec<EncodedEvent>, EncodedEvent, Code)> = vec![
        (
            "erasure of an unknown shipment",
            vec![],
            net.erase_personal("seller-acme", S),
            codes::SHIPMENT_UNKNOWN,
        ),
        (
            "erasure by a carrier",
            registered.clone(),
            net.erase_personal("carrier-swift", S),
            codes::PERSONAL_NOT_ALLOWED,
        ),
        (
            "erasure by an auditor",
            registered.clone(),
            net.erase_personal("auditor-ivy", S),
            codes::PERSONAL_NOT_ALLOWED,
        ),
        (
            "second erasure, by an admin",
            erased.clone(),
            net.erase_personal("admin-1", S),
            codes::PERSONAL_ALREADY_ERASED,
        ),
        (
            "replayed erasure",
            erased.clone(),
            erased[1].clone(),
            codes::EVENT_DUPLICATE,
        ),
    ];
    for (name, prefix, event, code) in cases {
        let (_, verdict) = run(&net, &prefix, &event);
        assert_eq!(verdict, Err(code), "{name}");
    }
    // Events after an erasure still apply: the lifecycle goes on.
    let mut prefix = [registered, vec![net.erase_personal("admin-3", S)]].concat();
    prefix.push(steps.step(PROPOSE).clone());
    let (state, verdict) = run(&net, &prefix, steps.step(ACCEPT));
    assert_eq!(verdict, Ok(()));
    assert!(state.shipment(&ShipmentId::new(S)).unwrap().personal_erased);
}

/// Another seller may not erase a shipment it did not register.
#[test]
fn only_the_shipments_seller_erases() {
    let net = TestNet::new();
    let reg = net.register(S, "CN", "FR");
    let mut state = State::from_genesis(&net.genesis);
    apply(&mut state, &reg, ctx()).expect("registered");
    // A member with the seller role that is not this shipment's seller: admit one.
    let other = Keypair::from_seed([42; 32]);
    let change = MembershipChange::Admit {
        member: Member {
            id: MemberId::new("seller-other"),
            name: "Other Seller".into(),
            roles: vec![Role::Seller],
            key: other.public(),
        },
    };
    let admit = net.sign(
        "admin-1",
        EventKind::MembershipChanged(MembershipChanged {
            approvals: vec![approve(&net.genesis.chain_id, &change, net.key("admin-2"))],
            change,
        }),
    );
    apply(&mut state, &admit, ctx()).expect("admitted");
    let erase = EncodedEvent::new(custody_ledger::event::sign(
        Event {
            chain_id: net.genesis.chain_id.clone(),
            occurred_at: GENESIS_TIME,
            kind: EventKind::PersonalDataErased(PersonalDataErased {
                shipment_id: ShipmentId::new(S),
            }),
        },
        &other,
    ));
    assert_eq!(
        apply(&mut state, &erase, ctx()).map_err(|r| r.code),
        Err(codes::PERSONAL_NOT_ALLOWED)
    );
}
