//! Event signatures get one verdict wherever they are checked (`docs/PROTOCOL.md` §5.3): the
//! single cofactored check of admission, the batch of block validation in any composition,
//! and chain verification, including on signatures a key holder crafts with a small-order
//! (torsion) component in `R`, which the cofactorless batch of ed25519-dalek judged by the
//! luck of its coefficients.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity as _;
use custody_ledger::chain::validate_block;
use custody_ledger::event::{verify_events, EncodedEvent};
use custody_ledger::keys::{
    verify_batch, BatchError, KeyCache, KeyError, Keypair, PublicKey, Signature, SignedMessage,
};
use custody_ledger::model::SignedEvent;
use custody_ledger::reject::codes;
use custody_ledger::rules::NoRules;
use custody_ledger::store::MemoryStore;
use custody_ledger::testkit::{TestNet, GENESIS_TIME, MEMBERS};
use custody_ledger::verify::verify_chain;
use custody_ledger::Timestamp;
use sha2::{Digest as _, Sha512};

/// Compositions of the batch the crafted signature is checked in.
const COMPOSITIONS: usize = 50;

fn keypair(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn hash_to_scalar(parts: &[&[u8]]) -> Scalar {
    let mut hash = Sha512::new();
    for part in parts {
        hash.update(part);
    }
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A signature by `key` over `message` whose `R` is `[r]B + torsion`, with `s = r + k·a` and
/// `k = H(R ‖ A ‖ M)` over that `R`: what only the key holder can make. The cofactorless
/// equation is off by `torsion`, the cofactored one holds.
fn torsion_signature(key: &Keypair, message: &[u8], torsion: EdwardsPoint) -> Signature {
    let secret = key.signing_key().to_scalar();
    let nonce = hash_to_scalar(&[b"test nonce", message]);
    let r = (EdwardsPoint::mul_base(&nonce) + torsion).compress();
    let k = hash_to_scalar(&[r.as_bytes(), &key.public().0, message]);
    let s = nonce + k * secret;
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(r.as_bytes());
    bytes[32..].copy_from_slice(s.as_bytes());
    Signature(bytes)
}

/// The small-order points of orders 8, 4 and 2.
fn torsion_points() -> [(EdwardsPoint, u32); 3] {
    let points = [
        (EIGHT_TORSION[1], 8),
        (EIGHT_TORSION[2], 4),
        (EIGHT_TORSION[4], 2),
    ];
    for (point, order) in points {
        assert!((Scalar::from(order) * point).is_identity());
        assert!(!(Scalar::from(order / 2) * point).is_identity());
    }
    points
}

/// Signed items: the key, the message and the signature.
type Item = (PublicKey, Vec<u8>, Signature);

fn honest(n: u8, message: &[u8]) -> Item {
    let key = keypair(n);
    (key.public(), message.to_vec(), key.sign(message))
}

fn batch(items: &[Item]) -> Result<(), BatchError> {
    let borrowed: Vec<SignedMessage<'_>> = items
        .iter()
        .map(|(key, message, signature)| SignedMessage {
            key,
            message,
            signature,
        })
        .collect();
    verify_batch(&borrowed, &KeyCache::new())
}

/// ed25519-dalek 2.2's own batch, which block validation used before: cofactorless, with
/// coefficients from a transcript of the batch.
fn dalek_batch(items: &[Item]) -> bool {
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    let keys: Vec<_> = items
        .iter()
        .map(|(k, _, _)| k.verifying_key().expect("valid key"))
        .collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

/// Composition `c`: a few honest signatures (their number, signers and messages vary with
/// `c`) with `crafted` at position `c` modulo their count.
fn composition(c: usize, crafted: &Item) -> Vec<Item> {
    let count = 2 + c % 7;
    let mut items: Vec<Item> = (0..count)
        .map(|i| {
            honest(
                1 + (i % 3) as u8,
                format!("composition {c} item {i}").as_bytes(),
            )
        })
        .collect();
    items.insert(c % (count + 1), crafted.clone());
    items
}

#[test]
fn a_torsion_signature_is_valid_alone_and_in_every_batch() {
    let key = keypair(7);
    for (torsion, order) in torsion_points() {
        let message = format!("crafted with a point of order {order}").into_bytes();
        let signature = torsion_signature(&key, &message, torsion);
        let public = key.public();
        assert_eq!(
            public.verify(&message, &signature),
            Err(KeyError::BadSignature),
            "strict verification refuses it"
        );
        assert_eq!(public.verify_cofactored(&message, &signature), Ok(()));
        assert_eq!(
            KeyCache::new().verify_cofactored(&public, &message, &signature),
            Ok(())
        );
        let crafted = (public, message, signature);
        for c in 0..COMPOSITIONS {
            assert_eq!(batch(&composition(c, &crafted)), Ok(()), "composition {c}");
        }
    }
}

#[test]
fn the_cofactorless_batch_judged_a_torsion_signature_by_its_batch() {
    let (torsion, _) = torsion_points()[0];
    let key = keypair(7);
    let message = b"crafted with a point of order 8".to_vec();
    let crafted = (
        key.public(),
        message.clone(),
        torsion_signature(&key, &message, torsion),
    );
    let verdicts: Vec<bool> = (0..COMPOSITIONS)
        .map(|c| dalek_batch(&composition(c, &crafted)))
        .collect();
    let accepted = verdicts.iter().filter(|v| **v).count();
    assert!(
        accepted > 0 && accepted < COMPOSITIONS,
        "the old batch accepted it in {accepted} of {COMPOSITIONS} compositions"
    );
}

#[test]
fn a_bad_signature_is_refused_everywhere_and_named_in_a_batch() {
    let (torsion, _) = torsion_points()[0];
    let key = keypair(7);
    let crafted = (
        key.public(),
        b"crafted".to_vec(),
        torsion_signature(&key, b"crafted", torsion),
    );
    let (public, message, good) = honest(3, b"the signed message");
    let mut flipped_s = good;
    flipped_s.0[40] ^= 1;
    let bad: [Item; 2] = [
        (public, b"another message".to_vec(), good),
        (public, message.clone(), flipped_s),
    ];
    for (c, (key, message, signature)) in bad.iter().enumerate() {
        assert_eq!(key.verify(message, signature), Err(KeyError::BadSignature));
        assert_eq!(
            key.verify_cofactored(message, signature),
            Err(KeyError::BadSignature)
        );
        // The torsion signature before it is valid; the bad one is named.
        let mut items = composition(c, &crafted);
        let position = items.len();
        items.push((*key, message.clone(), *signature));
        items.push(honest(4, b"after the bad one"));
        assert_eq!(
            batch(&items),
            Err(BatchError {
                index: position,
                error: KeyError::BadSignature
            })
        );
    }
}

/// A signature whose `R` is a small-order point itself, `s = k·a`: the cofactored equation
/// holds, and the small-order check refuses it.
fn small_order_r_signature(key: &Keypair, message: &[u8], torsion: EdwardsPoint) -> Signature {
    let r = torsion.compress();
    let k = hash_to_scalar(&[r.as_bytes(), &key.public().0, message]);
    let s = k * key.signing_key().to_scalar();
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(r.as_bytes());
    bytes[32..].copy_from_slice(s.as_bytes());
    Signature(bytes)
}

/// A weak key `A = T` of small order and a signature anyone can make for it: `R = [r]B`,
/// `s = r`; the cofactored equation holds, and the weak-key check refuses it.
fn weak_key_forgery(torsion: EdwardsPoint, message: &[u8]) -> Item {
    let nonce = hash_to_scalar(&[b"forger's nonce", message]);
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(EdwardsPoint::mul_base(&nonce).compress().as_bytes());
    bytes[32..].copy_from_slice(nonce.as_bytes());
    (
        PublicKey(torsion.compress().to_bytes()),
        message.to_vec(),
        Signature(bytes),
    )
}

#[test]
fn small_order_r_and_weak_keys_are_refused_everywhere() {
    let key = keypair(7);
    for (c, (torsion, order)) in torsion_points().into_iter().enumerate() {
        let message = format!("small order {order}").into_bytes();
        let signature = small_order_r_signature(&key, &message, torsion);
        let public = key.public();
        assert_eq!(
            public.verify(&message, &signature),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            public.verify_cofactored(&message, &signature),
            Err(KeyError::BadSignature)
        );
        let items = composition(c, &(public, message, signature));
        let index = c % (items.len());
        assert_eq!(
            batch(&items),
            Err(BatchError {
                index,
                error: KeyError::BadSignature
            })
        );

        let (weak, message, signature) = weak_key_forgery(torsion, b"forged");
        assert_eq!(weak.verify(&message, &signature), Err(KeyError::WeakKey));
        assert_eq!(
            weak.verify_cofactored(&message, &signature),
            Err(KeyError::WeakKey)
        );
        let items = composition(c, &(weak, message, signature));
        assert_eq!(
            batch(&items),
            Err(BatchError {
                index,
                error: KeyError::WeakKey
            })
        );
    }
}

/// The group order `L`, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn a_non_canonical_s_is_refused_by_the_cofactored_check_and_the_batch() {
    let (public, message, mut signature) = honest(2, b"m");
    // s + L: the same value mod L, not canonical (s < L < 2^253, so the sum fits).
    let mut carry = 0u16;
    for (s_byte, l_byte) in signature.0[32..].iter_mut().zip(L) {
        let sum = u16::from(*s_byte) + u16::from(l_byte) + carry;
        *s_byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(
        public.verify_cofactored(&message, &signature),
        Err(KeyError::BadSignature)
    );
    let items = vec![honest(1, b"first"), (public, message, signature)];
    assert_eq!(
        batch(&items),
        Err(BatchError {
            index: 1,
            error: KeyError::BadSignature
        })
    );
}

fn at(seconds: u64) -> Timestamp {
    Timestamp(GENESIS_TIME.0 + seconds * 1000)
}

/// The test member that signs with `key`.
fn member_of(net: &TestNet, key: &PublicKey) -> &'static str {
    MEMBERS
        .iter()
        .map(|(id, _, _)| *id)
        .find(|id| net.key(id).public() == *key)
        .expect("a test member signed it")
}

/// `event` with its signature replaced by a torsion signature of the same signer over the
/// same canonical body.
fn with_torsion_signature(net: &TestNet, event: &EncodedEvent) -> EncodedEvent {
    let (torsion, _) = torsion_points()[0];
    let signer = member_of(net, &event.event().signer);
    let signature = torsion_signature(net.key(signer), &event.signing_message(), torsion);
    let crafted = EncodedEvent::new(SignedEvent {
        signature,
        ..event.event().clone()
    });
    assert_eq!(crafted.signing_message(), event.signing_message());
    crafted
}

#[test]
fn regression_issue_17_admission_validation_and_verify_chain_agree_on_torsion_signatures() {
    let net = TestNet::new();
    let mut events = net.lifecycle("SHP-17");
    // The last event of the lifecycle: no later event names its id, which the new signature
    // changes.
    let last = events.len() - 1;
    events[last] = with_torsion_signature(&net, &events[last]);
    let crafted = events[last].clone();
    assert!(
        crafted
            .event()
            .signer
            .verify(&crafted.signing_message(), &crafted.event().signature)
            .is_err(),
        "the crafted signature fails strict verification"
    );

    // Admission: the single check.
    let keys = KeyCache::new();
    assert!(
        crafted.clone().verify(&keys).is_ok(),
        "admission accepts it"
    );
    assert_eq!(crafted.verify_signature(), Ok(()));

    // Block validation's batch, in blocks of every composition and position.
    let others: Vec<EncodedEvent> = net.lifecycle("SHP-OTHER");
    for c in 0..COMPOSITIONS {
        let mut block: Vec<EncodedEvent> =
            others.iter().take(1 + c % others.len()).cloned().collect();
        block.insert(c % (block.len() + 1), crafted.clone());
        let verdict = verify_events(block, |_| None, &KeyCache::new());
        assert!(verdict.is_ok(), "composition {c}: {verdict:?}");
    }

    // A chain holding it: built from admitted events, validated by a validator that held
    // none of them, and verified.
    let store = MemoryStore::new(net.genesis_hash());
    let built = net.commit(&store, events.clone(), at(1)).expect("commit");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let block = built.block().clone();
    assert!(block.events.iter().any(|e| e.id() == crafted.id()));
    let fresh = MemoryStore::new(net.genesis_hash());
    validate_block(&fresh, &net.genesis, &NoRules, block, &KeyCache::new())
        .expect("a validator that held none of its events accepts the block");
    let summary = verify_chain(&store, &net.genesis, NoRules, |_, _| {}).expect("chain verifies");
    assert_eq!(summary.height, 1);

    // And a plain bad signature gets the same refusal from every path.
    let mut bad = crafted.event().clone();
    bad.signature.0[40] ^= 1;
    let bad = EncodedEvent::new(bad);
    let admission = bad.clone().verify(&keys).expect_err("admission refuses it");
    assert_eq!(admission.code, codes::SIGNATURE_INVALID);
    let failure = verify_events(vec![others[0].clone(), bad.clone()], |_| None, &keys)
        .expect_err("the batch refuses it");
    assert_eq!((failure.index, failure.id), (1, bad.id()));
    assert_eq!(failure.rejection, admission);
}
