//! Key files: ed25519 private keys as PKCS#8 PEM, and genesis files as JSON.

use std::path::Path;

use custody_ledger::genesis::Genesis;
use custody_ledger::keys::Keypair;

/// Largest key or genesis file read.
const FILE_SIZE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Why a key or genesis file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The contents are not what they should be.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn read(path: &Path) -> Result<String, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > FILE_SIZE_BYTES_MAX {
        return Err(KeyFileError::Invalid {
            path: path.display().to_string(),
            message: format!("larger than {FILE_SIZE_BYTES_MAX} bytes"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Reads an ed25519 private key from a PKCS#8 PEM file.
pub fn read_key(path: &Path) -> Result<Keypair, KeyFileError> {
    Keypair::from_pkcs8_pem(&read(path)?).map_err(|e| KeyFileError::Invalid {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes a private key as PKCS#8 PEM, readable by its owner only.
pub fn write_key(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let pem = key.to_pkcs8_pem();
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(path, pem.as_bytes()).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// Reads and validates a genesis file.
pub fn read_genesis(path: &Path) -> Result<Genesis, KeyFileError> {
    let text = read(path)?;
    let invalid = |message: String| KeyFileError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let genesis: Genesis = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    genesis.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(genesis)
}

/// The libp2p identity of a node key: the same ed25519 key.
pub fn libp2p_keypair(key: &Keypair) -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::ed25519_from_bytes(key.signing_key().to_bytes())
        .expect("a 32-byte ed25519 secret is a valid libp2p key")
}

/// The libp2p peer id of a node public key.
pub fn peer_id(key: &custody_ledger::PublicKey) -> Option<libp2p::PeerId> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(libp2p::PeerId::from_public_key(
        &libp2p::identity::PublicKey::from(public),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_map_to_peer_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.pem");
        let key = Keypair::from_seed([7; 32]);
        write_key(&path, &key).expect("write");
        let back = read_key(&path).expect("read");
        assert_eq!(back.public(), key.public());
        assert_eq!(
            libp2p_keypair(&key).public().to_peer_id(),
            peer_id(&key.public()).expect("valid key")
        );
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(read_key(&path), Err(KeyFileError::Invalid { .. })));
    }

    #[test]
    fn genesis_files_are_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("genesis.json");
        let net = custody_ledger::testkit::TestNet::new();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&net.genesis).expect("json"),
        )
        .expect("write");
        assert_eq!(
            read_genesis(&path).expect("valid").hash(),
            net.genesis_hash()
        );
        let mut bad = net.genesis.clone();
        bad.admin_quorum = 0;
        std::fs::write(&path, serde_json::to_string(&bad).expect("json")).expect("write");
        let err = read_genesis(&path).expect_err("invalid");
        assert!(err.to_string().contains("admin_quorum"), "{err}");
    }
}
