//! The cofactored Ed25519 equation that event signatures are judged by, singly and in
//! batches (`docs/PROTOCOL.md` §5.3).
//!
//! The cofactorless equation `[s]B = R + [k]A` that strict verification checks has no batch
//! form with the same verdicts: a batch combines the equations with coefficients, and a
//! torsion component a signer hides in `R` cancels for some coefficients and not for others.
//! Multiplied by the cofactor 8, every torsion component vanishes whatever the coefficient,
//! so the batch accepts a list exactly when every signature in it passes the single check
//! here (up to a chance of about 2^-128 for a list built to fool it). The verdict on a
//! signature is then a function of the signature alone, never of the batch it is checked in.

use std::collections::BTreeMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use sha2::{Digest as _, Sha512};

/// Domain of the hash that seeds a batch's coefficients.
const BATCH_SEED_DOMAIN: &[u8] = b"custody/event-signature-batch/v1";
/// Domain of the hash that expands the seed into one coefficient per item.
const COEFFICIENT_DOMAIN: &[u8] = b"custody/event-signature-batch-coefficient/v1";
/// Bytes of a batch coefficient: 128 bits bound the chance that a bad item slips through.
const COEFFICIENT_BYTES: usize = 16;

/// A signature whose encodings passed every check but the equation, with the values the
/// equation needs.
pub(super) struct Prepared {
    key_bytes: [u8; 32],
    key: EdwardsPoint,
    r: EdwardsPoint,
    r_bytes: [u8; 32],
    s: Scalar,
    k: Scalar,
}

/// Decodes `R ‖ s` for key `key` (already parsed and refused if weak) and computes
/// `k = SHA-512(R ‖ A ‖ M) mod L`; `None` if `s` is not below `L`, or `R` is not a canonical
/// point encoding or has small order.
pub(super) fn prepare(
    key_bytes: &[u8; 32],
    key: EdwardsPoint,
    message: &[u8],
    signature: &[u8; 64],
) -> Option<Prepared> {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = r_point(&r_bytes)?;
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key_bytes);
    hash.update(message);
    let mut k_bytes = [0u8; 64];
    k_bytes.copy_from_slice(&hash.finalize());
    let k = Scalar::from_bytes_mod_order_wide(&k_bytes);
    Some(Prepared {
        key_bytes: *key_bytes,
        key,
        r,
        r_bytes,
        s,
        k,
    })
}

/// `R` as a point: its `y` must be below `p` (so that, as in strict verification, only the
/// canonical encoding of a point is accepted) and the point must not have small order.
fn r_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !y_is_canonical(bytes) {
        return None;
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    (!point.is_small_order()).then_some(point)
}

/// Whether the 255-bit `y` of a point encoding is below `p = 2^255 − 19`. The encodings at or
/// above `p` have every bit of `y` set but the lowest few: bytes 1 to 30 are `ff`, byte 31
/// (without the sign bit) is `7f` and byte 0 is at least `ed`.
fn y_is_canonical(bytes: &[u8; 32]) -> bool {
    let top_is_all_ones = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|b| *b == 0xff);
    !(top_is_all_ones && bytes[0] >= 0xed)
}

/// The single check: `[8]([s]B − R − [k]A)` is the identity.
pub(super) fn holds(item: &Prepared) -> bool {
    let s_b_minus_k_a =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&item.k, &-item.key, &item.s);
    (s_b_minus_k_a - item.r).mul_by_cofactor().is_identity()
}

/// The batch check: `[8]([Σ z_i s_i]B − Σ [z_i]R_i − Σ [z_i k_i]A_i)` is the identity, with
/// the coefficients `z_i` of [`coefficients`]. The terms of one key are summed into one
/// scalar first, so a batch costs one point per signature and one per distinct signer.
pub(super) fn batch_holds(items: &[Prepared]) -> bool {
    let mut scalars = Vec::with_capacity(items.len() + 1);
    let mut points = Vec::with_capacity(items.len() + 1);
    let mut base_scalar = Scalar::ZERO;
    let mut per_key: BTreeMap<[u8; 32], (Scalar, EdwardsPoint)> = BTreeMap::new();
    for (item, z) in items.iter().zip(coefficients(items)) {
        base_scalar += z * item.s;
        scalars.push(-z);
        points.push(item.r);
        per_key
            .entry(item.key_bytes)
            .or_insert((Scalar::ZERO, item.key))
            .0 += z * item.k;
    }
    for (sum, key) in per_key.into_values() {
        scalars.push(-sum);
        points.push(key);
    }
    scalars.push(base_scalar);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// One 128-bit coefficient per item, derived from every value the batch equation reads, so
/// that every validator computes the same ones and a signer cannot know them before fixing
/// the whole batch. The message enters through `k`, which is its hash (with `R` and `A`): the
/// equation reads the message only through `k`.
fn coefficients(items: &[Prepared]) -> impl Iterator<Item = Scalar> {
    let mut seed = Sha512::new();
    seed.update(BATCH_SEED_DOMAIN);
    seed.update((items.len() as u64).to_le_bytes());
    for item in items {
        seed.update(item.r_bytes);
        seed.update(item.key_bytes);
        seed.update(item.s.as_bytes());
        seed.update(item.k.as_bytes());
    }
    let seed = seed.finalize();
    (0..items.len() as u64).map(move |index| {
        let mut expand = Sha512::new();
        expand.update(COEFFICIENT_DOMAIN);
        expand.update(seed);
        expand.update(index.to_le_bytes());
        let mut bytes = [0u8; 32];
        bytes[..COEFFICIENT_BYTES].copy_from_slice(&expand.finalize()[..COEFFICIENT_BYTES]);
        Scalar::from_bytes_mod_order(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `p = 2^255 − 19`, little-endian.
    fn p() -> [u8; 32] {
        let mut bytes = [0xff; 32];
        bytes[0] = 0xed;
        bytes[31] = 0x7f;
        bytes
    }

    #[test]
    fn y_at_or_above_p_is_not_canonical_whatever_the_sign_bit() {
        let mut below = p();
        below[0] = 0xec;
        assert!(y_is_canonical(&below));
        for low in [0xed, 0xee, 0xff] {
            let mut at_or_above = p();
            at_or_above[0] = low;
            assert!(!y_is_canonical(&at_or_above), "{low:x}");
        }
        let mut signed = p();
        signed[31] = 0xff;
        assert!(!y_is_canonical(&signed));
        let mut two_below_top = p();
        two_below_top[30] = 0xfe;
        assert!(y_is_canonical(&two_below_top));
    }

    #[test]
    fn a_non_canonical_r_is_refused_even_when_it_decodes() {
        // y = p + 1 decodes to y = 1, the identity: refused for its encoding before its order.
        let mut r = p();
        r[0] = 0xee;
        assert!(CompressedEdwardsY(r).decompress().is_some());
        assert!(r_point(&r).is_none());
        let mut canonical = [0u8; 32];
        canonical.copy_from_slice(ED25519_BASEPOINT_POINT.compress().as_bytes());
        assert!(r_point(&canonical).is_some());
    }
}
