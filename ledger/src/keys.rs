//! Ed25519 keys and signatures: the only key type in Custody.
//!
//! Two verification rules, both refusing non-canonical scalars, small-order `R` and keys of
//! small order ("weak keys", refused when parsed, so that no member can ever register one):
//!
//! - **strict** (`verify_strict`, cofactorless), for commit certificates, membership
//!   approvals and every other signature checked one at a time;
//! - **cofactored**, for event signatures, which blocks check by the thousand: it has a batch
//!   form with exactly the single check's verdicts, so whether an event's signature is valid
//!   never depends on the batch it is checked in (`docs/PROTOCOL.md` §5.3).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::fixed_bytes;

mod cofactored;

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The 32 bytes are not the encoding of a curve point.
    #[error("public key is not a valid ed25519 point")]
    InvalidKey,
    /// The point has small order: anyone could forge signatures for it.
    #[error("public key is a weak (small-order) ed25519 key")]
    WeakKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
}

/// Why a text is not a PKCS#8 PEM ed25519 private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// The PEM or PKCS#8 parser refused it.
    #[error("not a PKCS#8 PEM ed25519 private key: {0}")]
    Parse(#[source] crate::cause::Cause),
    /// A version-2 document whose public key is not the private key's.
    #[error(
        "not a PKCS#8 PEM ed25519 private key: the embedded public key is not the private key's"
    )]
    KeyMismatch,
}

/// Most parsed keys a [`KeyCache`] keeps.
pub const KEY_CACHE_ENTRIES_MAX: usize = 4_096;

/// Parsed keys (or why they are refused) by their bytes, owned by whoever verifies many
/// signatures: a node's admission and consensus host, a chain verification.
///
/// Decompressing a point and checking its order cost about a third of a verification, and a
/// network has few keys that sign many events. The answer for given bytes never changes, so
/// the cache changes no verdict; it is cleared when it holds [`KEY_CACHE_ENTRIES_MAX`] keys.
/// The ledger keeps no process-wide state: a cache lives exactly as long as its owner.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<BTreeMap<[u8; 32], Result<VerifyingKey, KeyError>>>,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    /// [`PublicKey::verifying_key`], remembered.
    pub fn verifying_key(&self, key: &PublicKey) -> Result<VerifyingKey, KeyError> {
        if let Some(answer) = self.entries.read().expect("key cache lock").get(&key.0) {
            return answer.clone();
        }
        let answer = key.verifying_key();
        let mut entries = self.entries.write().expect("key cache lock");
        if entries.len() >= KEY_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key.0, answer.clone());
        answer
    }

    /// [`PublicKey::verify`], with the key parsed through the cache.
    pub fn verify(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), KeyError> {
        verify_strict(&self.verifying_key(key)?, message, signature)
    }

    /// [`PublicKey::verify_cofactored`], with the key parsed through the cache.
    pub fn verify_cofactored(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), KeyError> {
        verify_cofactored(key, &self.verifying_key(key)?, message, signature)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.read().expect("key cache lock").len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn verify_strict(
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), KeyError> {
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &signature)
        .map_err(|_| KeyError::BadSignature)
}

fn verify_cofactored(
    key_bytes: &PublicKey,
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), KeyError> {
    match cofactored::prepare(&key_bytes.0, key.to_edwards(), message, &signature.0) {
        Some(prepared) if cofactored::holds(&prepared) => Ok(()),
        _ => Err(KeyError::BadSignature),
    }
}

/// A member's or validator's ed25519 public key, as its 32 compressed bytes.
///
/// Holding a `PublicKey` does not mean the bytes are a usable key: call
/// [`PublicKey::verifying_key`], which refuses invalid and weak keys.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses the key for verification, refusing points off the curve and weak keys. A
    /// [`KeyCache`] remembers the answers for a verifier that sees the same keys often.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(key)
    }

    /// Strict verification of `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        verify_strict(&self.verifying_key()?, message, signature)
    }

    /// Cofactored verification of `signature` over `message`, the rule for event signatures
    /// (`docs/PROTOCOL.md` §5.3): the checks of strict verification on the key, `R` and `s`,
    /// then `[8]([s]B − R − [k]A)` must be the identity. It accepts everything strict
    /// verification accepts, and also a signature whose `R` its key holder offset by a
    /// small-order point; [`verify_batch`] reaches exactly its verdicts.
    pub fn verify_cofactored(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        verify_cofactored(self, &self.verifying_key()?, message, signature)
    }

    /// Lowercase hex of the 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (without checking that the point is valid).
    pub fn from_hex(text: &str) -> Result<PublicKey, crate::hash::HexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| crate::hash::HexError { expected_bytes: 32 })?;
        Ok(PublicKey(out))
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        PublicKey(key.to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fixed_bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_bytes::deserialize(deserializer).map(PublicKey)
    }
}

/// An ed25519 signature, 64 bytes (R then s). Ordered bytewise, so that consensus code can
/// keep signatures in ordered sets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fixed_bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_bytes::deserialize(deserializer).map(Signature)
    }
}

/// A public key is 64 hex characters in JSON.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PublicKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::hash::string_schema(
            "An ed25519 public key: its 32 compressed bytes as 64 hex characters, written in \
             lowercase (either case is read).",
            64,
            64,
            "^[0-9a-fA-F]{64}$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PublicKey {}

/// A signature is 128 hex characters in JSON.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Signature {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::hash::string_schema(
            "An ed25519 signature: 64 bytes (R then s) as 128 hex characters, written in \
             lowercase (either case is read).",
            128,
            128,
            "^[0-9a-fA-F]{128}$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Signature {}

/// A signing key held in memory. Key files are the node's and CLI's business; this type
/// only signs.
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        write!(f, "Keypair({})", self.public().to_hex())
    }
}

impl Keypair {
    /// A key from a 32-byte secret seed. Callers draw the seed from the OS (or, in tests,
    /// from a fixed value); this crate never draws randomness itself.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Wraps an ed25519-dalek signing key.
    pub fn from_signing_key(signing: SigningKey) -> Keypair {
        Keypair { signing }
    }

    /// The ed25519-dalek signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the key-file format of every
    /// Custody tool; the text is wiped from memory when dropped.
    ///
    /// The form is RFC 8410's `OneAsymmetricKey` version 1, without the optional public key
    /// (`30 2e 02 01 00 30 05 06 03 2b 65 70 04 22 04 20` then the 32-byte seed), as base64
    /// lines of 64 characters: what `openssl genpkey -algorithm ed25519` writes, and what
    /// OpenSSL 3.0 reads (it refuses the version 2 form with the public key).
    pub fn to_pkcs8_pem(&self) -> zeroize::Zeroizing<String> {
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey as _};
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a 32-byte ed25519 seed always has a PKCS#8 form")
    }

    /// Reads a PKCS#8 PEM ed25519 private key: version 1 (RFC 8410, what OpenSSL and
    /// [`Keypair::to_pkcs8_pem`] write) or version 2 with the public key (what Custody wrote
    /// before), whose public key must then be the seed's. Whitespace around the PEM block and
    /// CRLF line ends are accepted.
    pub fn from_pkcs8_pem(text: &str) -> Result<Keypair, PemError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let text = zeroize::Zeroizing::new(format!("{}\n", text.trim().replace("\r\n", "\n")));
        let bytes = ed25519_dalek::pkcs8::KeypairBytes::from_pkcs8_pem(&text)
            .map_err(|e| PemError::Parse(crate::cause::Cause::new(e)))?;
        SigningKey::try_from(&bytes)
            .map(Keypair::from_signing_key)
            .map_err(|_| PemError::KeyMismatch)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message` (deterministic ed25519).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

/// One item of a batch: who signed what.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The claimed signer.
    pub key: &'a PublicKey,
    /// The exact signed bytes.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
}

/// The first item of a batch that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {index}: {error}")]
pub struct BatchError {
    /// Position of the first bad item in the batch.
    pub index: usize,
    /// What was wrong with it.
    pub error: KeyError,
}

/// Verifies many signatures with the cofactored rule at once, and names the first bad one
/// when the batch fails: the verdict on each item is [`PublicKey::verify_cofactored`]'s,
/// whatever else the batch holds.
///
/// Every item's key is parsed first (invalid and weak keys are refused as in single
/// verification), its `s` must be below `L` and its `R` a canonical encoding of a point not
/// of small order. Then one combined equation, multiplied by the cofactor, is checked with
/// coefficients hashed from the whole batch, so every validator computes the same ones and
/// the batch holds exactly when every single equation does (but with a chance of about
/// 2^-128 for a batch crafted to fool it). When it fails, each item is checked singly in
/// order, which names the first bad one.
pub fn verify_batch(items: &[SignedMessage<'_>], cache: &KeyCache) -> Result<(), BatchError> {
    let prepared = items
        .iter()
        .enumerate()
        .map(|(index, item)| prepare(item, cache).map_err(|error| BatchError { index, error }))
        .collect::<Result<Vec<_>, _>>()?;
    if cofactored::batch_holds(&prepared) {
        return Ok(());
    }
    match prepared.iter().position(|item| !cofactored::holds(item)) {
        Some(index) => Err(BatchError {
            index,
            error: KeyError::BadSignature,
        }),
        // Unreachable: when every single equation holds, so does any combination of them.
        None => Err(BatchError {
            index: 0,
            error: KeyError::BadSignature,
        }),
    }
}

/// One batch item's key parsed through the cache and its signature decoded.
fn prepare(item: &SignedMessage<'_>, cache: &KeyCache) -> Result<cofactored::Prepared, KeyError> {
    let key = cache.verifying_key(item.key)?;
    cofactored::prepare(
        &item.key.0,
        key.to_edwards(),
        item.message,
        &item.signature.0,
    )
    .ok_or(KeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(n: u8) -> Keypair {
        Keypair::from_seed([n; 32])
    }

    #[test]
    fn a_key_survives_pem_and_anything_else_is_refused() {
        let key = keypair(9);
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = Keypair::from_pkcs8_pem(&pem).expect("reads back");
        assert_eq!(back.public(), key.public());
        for bad in ["", "not a key", &pem[..pem.len() / 2]] {
            assert!(Keypair::from_pkcs8_pem(bad).is_err(), "{bad:?}");
        }
    }

    /// RFC 8410 §10.3: the example private key, and the public key of §10.3's second example.
    const RFC_8410_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";
    const RFC_8410_SEED: &str = "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";
    const RFC_8410_PUBLIC: &str =
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1";

    fn rfc_8410_key() -> Keypair {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(RFC_8410_SEED, &mut seed).expect("hex");
        Keypair::from_seed(seed)
    }

    #[test]
    fn pem_is_rfc_8410_pkcs8_version_1() {
        let key = rfc_8410_key();
        assert_eq!(key.public().to_hex(), RFC_8410_PUBLIC);
        let pem = key.to_pkcs8_pem();
        assert_eq!(pem.as_str(), RFC_8410_PEM);
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64");
        assert_eq!(
            hex::encode(der),
            format!("302e020100300506032b657004220420{RFC_8410_SEED}")
        );
        let back = Keypair::from_pkcs8_pem(RFC_8410_PEM).expect("reads");
        assert_eq!(back.public().to_hex(), RFC_8410_PUBLIC);
        // Lines are at most 64 characters, as OpenSSL writes them.
        let long = Keypair::from_seed([3; 32]);
        assert!(long.to_pkcs8_pem().lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn version_2_keys_with_a_public_key_still_load_if_it_matches() {
        // What `to_pkcs8_pem` wrote before (seed 9 × 32): version 2 with `[1]` public key.
        let old = "-----BEGIN PRIVATE KEY-----\n\
            MFECAQEwBQYDK2VwBCIEIAkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ\n\
            gSEA/RckOFqgx1tk+3jNYC+h2ZH96/drE8WO1wLqyDXp9hg=\n\
            -----END PRIVATE KEY-----\n";
        let key = Keypair::from_pkcs8_pem(old).expect("old keys load");
        assert_eq!(key.public(), keypair(9).public());
        // RFC 8410 §10.3's second example: version 2 with an attribute and the public key.
        let with_attributes = "-----BEGIN PRIVATE KEY-----\n\
            MHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
            oB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrB\n\
            Z9w7lshQhqowtrbLDFw4rXAxZuE=\n\
            -----END PRIVATE KEY-----\n";
        let key = Keypair::from_pkcs8_pem(with_attributes).expect("RFC 8410 v2 loads");
        assert_eq!(key.public().to_hex(), RFC_8410_PUBLIC);
        // The seed of key 9 with the public key of key 10: refused.
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey as _};
        let lying = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: [9; 32],
            public_key: Some(ed25519_dalek::pkcs8::PublicKeyBytes(keypair(10).public().0)),
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("pem");
        let error = Keypair::from_pkcs8_pem(&lying).expect_err("mismatched public key");
        assert!(error.to_string().contains("public key"), "{error}");
    }

    #[test]
    fn pem_with_crlf_and_surrounding_whitespace_loads() {
        let crlf = format!("\n  {}  \n\n", RFC_8410_PEM.replace('\n', "\r\n"));
        let key = Keypair::from_pkcs8_pem(&crlf).expect("reads");
        assert_eq!(key.public().to_hex(), RFC_8410_PUBLIC);
        let bare = RFC_8410_PEM.trim_end();
        assert!(Keypair::from_pkcs8_pem(bare).is_ok());
    }

    #[test]
    fn sign_and_verify() {
        let k = keypair(1);
        let sig = k.sign(b"hello");
        assert_eq!(k.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            k.public().verify(b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn cached_answers_equal_fresh_ones_and_the_cache_stays_bounded() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let cache = KeyCache::new();
        for bytes in [keypair(9).public().0, identity, [0xFF; 32]] {
            let key = PublicKey(bytes);
            let fresh = key.verifying_key();
            assert_eq!(cache.verifying_key(&key), fresh);
            assert_eq!(
                cache.verifying_key(&key),
                fresh,
                "the second answer comes from the cache"
            );
        }
        assert_eq!(cache.len(), 3);
        for n in 0..(KEY_CACHE_ENTRIES_MAX + 10) {
            let mut bytes = [7u8; 32];
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let _ = cache.verifying_key(&PublicKey(bytes));
        }
        let held = cache.len();
        assert!(held <= KEY_CACHE_ENTRIES_MAX, "{held} keys cached");
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey(identity).verifying_key().err(),
            Some(KeyError::WeakKey)
        );
        // A point of order 2: y = -1 mod p.
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        assert_eq!(
            PublicKey(minus_one).verifying_key().err(),
            Some(KeyError::WeakKey)
        );
    }

    #[test]
    fn non_canonical_s_is_refused() {
        let k = keypair(2);
        let mut sig = k.sign(b"m");
        // Add the group order l to s: same value mod l, but not canonical.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s_byte, l_byte) in sig.0[32..].iter_mut().zip(L) {
            let sum = u16::from(*s_byte) + u16::from(l_byte) + carry;
            *s_byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(k.public().verify(b"m", &sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn batch_names_the_first_bad_item() {
        let keys: Vec<Keypair> = (1..=20).map(keypair).collect();
        let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let publics: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let items = |sigs: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
            publics
                .iter()
                .zip(&messages)
                .zip(sigs)
                .map(|((k, m), s)| (*k, m.clone(), *s))
                .collect()
        };
        let run = |owned: &[(PublicKey, Vec<u8>, Signature)]| {
            let borrowed: Vec<SignedMessage<'_>> = owned
                .iter()
                .map(|(key, message, signature)| SignedMessage {
                    key,
                    message,
                    signature,
                })
                .collect();
            verify_batch(&borrowed, &KeyCache::new())
        };
        assert_eq!(run(&items(&sigs)), Ok(()));
        sigs[13].0[40] ^= 1;
        sigs[17].0[40] ^= 1;
        assert_eq!(
            run(&items(&sigs)),
            Err(BatchError {
                index: 13,
                error: KeyError::BadSignature
            })
        );
    }
}
