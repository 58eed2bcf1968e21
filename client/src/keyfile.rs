//! Key files: ed25519 private keys as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form
//! the node reads too.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use custody_ledger::Keypair;
use ed25519_dalek::SigningKey;

/// Largest key file read. A PEM ed25519 key is about 120 bytes.
pub const KEY_FILE_SIZE_BYTES_MAX: u64 = 64 * 1024;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be opened, read or written.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file already exists; keys are never overwritten.
    #[error("{}: the file already exists; refusing to overwrite a key", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The contents are not a usable key.
    #[error("{}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A new key from the operating system's random number generator.
pub fn generate() -> Keypair {
    Keypair::from_signing_key(SigningKey::generate(&mut rand::rngs::OsRng))
}

/// Reads an ed25519 private key from a PKCS#8 PEM file.
pub fn read_key(path: &Path) -> Result<Keypair, KeyFileError> {
    let io = |error| KeyFileError::Io {
        path: path.to_owned(),
        error,
    };
    let invalid = |message: String| KeyFileError::Invalid {
        path: path.to_owned(),
        message,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(KEY_FILE_SIZE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > KEY_FILE_SIZE_BYTES_MAX {
        return Err(invalid(format!(
            "larger than {KEY_FILE_SIZE_BYTES_MAX} bytes; not a key file"
        )));
    }
    Keypair::from_pkcs8_pem(&text).map_err(|e| invalid(e.to_string()))
}

/// Writes a private key as PKCS#8 PEM to a new file, readable by its owner only. Refuses to
/// overwrite an existing file.
pub fn write_key(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let pem = key.to_pkcs8_pem();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Io {
                path: path.to_owned(),
                error,
            }
        }
    })?;
    let io = |error| KeyFileError::Io {
        path: path.to_owned(),
        error,
    };
    file.write_all(pem.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("member.pem");
        let key = generate();
        write_key(&path, &key).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        assert_eq!(read_key(&path).expect("read").public(), key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let other = generate();
        assert_ne!(other.public(), key.public());
        assert!(matches!(
            write_key(&path, &other),
            Err(KeyFileError::Exists { .. })
        ));
        assert_eq!(read_key(&path).expect("unchanged").public(), key.public());
    }

    #[test]
    fn bad_key_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, "not a key").expect("write");
        let error = read_key(&path).expect_err("not a key");
        assert!(matches!(error, KeyFileError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains("bad.pem"), "{error}");
        let error = read_key(&dir.path().join("missing.pem")).expect_err("missing");
        assert!(matches!(error, KeyFileError::Io { .. }), "{error}");
    }
}
