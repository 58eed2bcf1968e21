//! Node configuration: a TOML file, with command-line flags that override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use custody_ledger::block::BLOCK_EVENTS_MAX;
use custody_ledger::codec::EVENT_SIZE_BYTES_MAX;
use serde::{Deserialize, Serialize};

/// Largest configuration file read.
const CONFIG_SIZE_BYTES_MAX: u64 = 1024 * 1024;

/// Most bytes of events a block may be configured to hold: a lagging node fetches a whole
/// block in one sync answer, and the consensus network's request limit
/// ([`crate::node`] sets it to [`SYNC_MESSAGE_BYTES_MAX`]) must leave room for the header,
/// the certificate and the framing.
pub const BLOCK_PAYLOAD_BYTES_MAX: usize = 8 * 1024 * 1024;

/// The consensus network's limit on one request or answer (sync carries whole blocks).
pub const SYNC_MESSAGE_BYTES_MAX: usize = 10 * 1024 * 1024;

/// Shortest `epcis_gateway.api_token` accepted.
pub const EPCIS_TOKEN_CHARS_MIN: usize = 16;

/// The whole configuration.
///
/// Build one with [`Config::new`] (or read one with [`Config::load`]) and set the fields to
/// change: the struct is `non_exhaustive` because its fields depend on the crate's features
/// (`faults` exists only with `fault-injection`), so a struct literal written in another crate
/// would compile under one feature set and not the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// A name for logs and metrics.
    pub moniker: String,
    /// Where the sled store and the consensus WAL live.
    pub data_dir: PathBuf,
    /// The node key, a PKCS#8 PEM ed25519 private key. Its public half must be a node key in
    /// genesis.
    pub key_file: PathBuf,
    /// The genesis file (JSON).
    pub genesis_file: PathBuf,
    /// Consensus network (Malachite).
    pub consensus: NetworkConfig,
    /// Event gossip network.
    pub gossip: NetworkConfig,
    /// HTTP API.
    pub http: HttpConfig,
    /// Mempool bounds.
    #[serde(default)]
    pub mempool: MempoolLimits,
    /// Proposal bounds.
    #[serde(default)]
    pub block: BlockLimitsConfig,
    /// Deliberate misbehaviour, for tests of what honest nodes do about it (`[faults]`). Only
    /// in builds with the `fault-injection` feature, which the test rig turns on; a build
    /// without it refuses a configuration that has the table.
    #[cfg(feature = "fault-injection")]
    #[serde(default, skip_serializing_if = "Faults::is_none")]
    pub faults: Faults,
    /// This node as its organisation's EPCIS capture gateway (`POST /epcis/capture`), for
    /// systems that cannot sign: the node signs what they send with the member's key. Absent
    /// by default, and then the endpoint answers 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epcis_gateway: Option<EpcisGatewayConfig>,
    /// Sharing of off-ledger personal data with the other nodes (`[personal]`). Empty by
    /// default: the node keeps what its members give it and fetches from no one.
    #[serde(default, skip_serializing_if = "PersonalConfig::is_empty")]
    pub personal: PersonalConfig,
}

/// `[personal]`: the nodes a node asks for a shipment's personal data when its member becomes
/// a party. The requests are signed with the node key and answered only to parties' nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalConfig {
    /// The other nodes' API base URLs, such as `http://127.0.0.1:8081`.
    #[serde(default)]
    pub peers: Vec<String>,
}

impl PersonalConfig {
    /// Whether no peer is configured.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// Most `[personal] peers`.
pub const PERSONAL_PEERS_MAX: usize = 64;

/// `[epcis_gateway]`: the member key the node signs captured events with, and the token the
/// organisation's systems present (`Authorization: Bearer <token>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpcisGatewayConfig {
    /// The member's event-signing key, a PKCS#8 PEM ed25519 private key.
    pub member_key_file: PathBuf,
    /// The bearer token callers must present; at least 16 characters.
    pub api_token: String,
    /// GS1's EPCIS 2.0 JSON Schema, to check captured documents against. Without it, only
    /// the mapping's own checks run (they refuse every field they do not read).
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
}

impl std::fmt::Debug for EpcisGatewayConfig {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpcisGatewayConfig")
            .field("member_key_file", &self.member_key_file)
            .field("api_token", &"<redacted>")
            .field("schema_file", &self.schema_file)
            .finish()
    }
}

/// Deliberate misbehaviour of a node, to test that the others withstand it (feature
/// `fault-injection`, for tests only).
///
/// A Byzantine validator is part of the threat model, so the tests need one; building it into
/// the real binary behind an explicit setting keeps it a real node on the real network rather
/// than a simulation of one. Every fault set logs `FAULT INJECTION` at start.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// A file holding one signed event in canonical bytes. When this node proposes, it puts
    /// that event first in the block without asking the rule modules, so an event the
    /// contracts refuse reaches the other validators inside a well-formed proposal.
    #[serde(default)]
    pub propose_unchecked_event: Option<PathBuf>,
    /// The consensus host panics when the engine decides this height, as it does on a
    /// broken invariant, so the supervisor's answer to a dead critical task can be tested
    /// on the real binary.
    #[serde(default)]
    pub panic_at_height: Option<u64>,
    /// When this node proposes a fresh block, it also builds a second, different valid block
    /// for the same height and round (half the events, one millisecond later), streams both,
    /// and signs a consensus proposal for each: an equivocating proposer.
    #[serde(default)]
    pub equivocate: bool,
    /// This node puts malformed messages on the consensus network besides its honest ones:
    /// every other vote it sends is damaged (a wrong signature, truncated, garbage, oversize
    /// or with a trailing byte), and every proposal it streams is followed by a damaged copy
    /// and by a copy whose closing signature is wrong.
    #[serde(default)]
    pub malformed_consensus_frames: bool,
    /// This node drops every event it receives by gossip, so it holds only the events
    /// submitted to it, and must fetch the others when a proposal names them by id.
    #[serde(default)]
    pub drop_gossiped_events: bool,
}

#[cfg(feature = "fault-injection")]
impl Faults {
    /// Whether no fault is configured.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }
}

/// A libp2p network: where to listen and whom to dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Listen multiaddress, such as `/ip4/127.0.0.1/tcp/26656`.
    pub listen: String,
    /// Peers to dial, with their `/p2p/<peer id>` suffix.
    #[serde(default)]
    pub peers: Vec<String>,
}

impl NetworkConfig {
    /// Listening on loopback at a port the system picks, dialing no one.
    pub fn loopback() -> NetworkConfig {
        NetworkConfig {
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            peers: Vec::new(),
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address, such as `127.0.0.1:8080` (port 0 picks one).
    pub listen: SocketAddr,
}

/// Mempool bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolLimits {
    /// Most events waiting.
    pub count_max: usize,
    /// Most bytes waiting.
    pub size_bytes_max: usize,
    /// Most events waiting from one signer, so that one member's flood leaves room for the
    /// others (a quarter of the pool by default).
    #[serde(default = "default_signer_count_max")]
    pub signer_count_max: usize,
    /// Most bytes waiting from one signer.
    #[serde(default = "default_signer_size_bytes_max")]
    pub signer_size_bytes_max: usize,
}

fn default_signer_count_max() -> usize {
    MempoolLimits::default().count_max / 4
}

fn default_signer_size_bytes_max() -> usize {
    MempoolLimits::default().size_bytes_max / 4
}

impl Default for MempoolLimits {
    fn default() -> Self {
        const COUNT_MAX: usize = 50_000;
        const SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;
        MempoolLimits {
            count_max: COUNT_MAX,
            size_bytes_max: SIZE_BYTES_MAX,
            signer_count_max: COUNT_MAX / 4,
            signer_size_bytes_max: SIZE_BYTES_MAX / 4,
        }
    }
}

/// Proposal bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockLimitsConfig {
    /// Most events per block.
    pub events_max: usize,
    /// Most bytes of events per block.
    pub size_bytes_max: usize,
    /// How long a proposer with an empty mempool waits for an event before it proposes an
    /// empty block. Without it an idle network commits a dozen empty blocks a second; it
    /// must stay well under the engine's propose timeout (3 s), or the other validators
    /// would vote nil on a proposer that is only waiting.
    #[serde(default = "default_empty_block_delay_ms")]
    pub empty_block_delay_ms: u64,
    /// The shortest time from one block to the next proposal while the mempool holds fewer
    /// events than a full block. Every block costs each node a fixed amount of work (votes,
    /// signatures, a flushed write, the proposal on disk); without a minimum, a lightly
    /// loaded network commits twenty small blocks a second and spends all its CPU on that.
    #[serde(default = "default_block_interval_min_ms")]
    pub interval_min_ms: u64,
}

fn default_empty_block_delay_ms() -> u64 {
    1_000
}

fn default_block_interval_min_ms() -> u64 {
    150
}

/// The largest `empty_block_delay_ms` and `interval_min_ms` accepted: half the engine's
/// propose timeout.
pub const EMPTY_BLOCK_DELAY_MS_MAX: u64 = 1_500;

impl Default for BlockLimitsConfig {
    fn default() -> Self {
        BlockLimitsConfig {
            events_max: 2_000,
            size_bytes_max: 4 * 1024 * 1024,
            empty_block_delay_ms: default_empty_block_delay_ms(),
            interval_min_ms: default_block_interval_min_ms(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any configuration.
    #[error("{path} is larger than {CONFIG_SIZE_BYTES_MAX} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML is malformed; the message names the field.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Refuses a `[faults]` table in a build that cannot honour it, by name, rather than with
/// serde's list of expected fields: the table is only ever written for the test rig, and a
/// node that silently ran honest where a test expected misbehaviour would pass that test
/// for the wrong reason.
#[cfg(not(feature = "fault-injection"))]
fn refuse_faults(text: &str) -> Result<(), String> {
    // Malformed TOML is left to the full parse, which names the line.
    match toml::from_str::<toml::Table>(text) {
        Ok(table) if table.contains_key("faults") => Err(
            "faults: this build has no fault injection (custody-node was built without the \
             `fault-injection` feature, which only tests use); remove the [faults] table"
                .into(),
        ),
        _ => Ok(()),
    }
}

impl Config {
    /// A configuration with everything but the node's files at its default: the three
    /// networks listen on loopback at ports the system picks (port 0) and dial no one, the
    /// mempool and block limits are the defaults, no EPCIS gateway, no personal-data peers
    /// (and no faults). Callers set the fields they need after.
    pub fn new(
        moniker: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
        genesis_file: impl Into<PathBuf>,
    ) -> Config {
        Config {
            moniker: moniker.into(),
            data_dir: data_dir.into(),
            key_file: key_file.into(),
            genesis_file: genesis_file.into(),
            consensus: NetworkConfig::loopback(),
            gossip: NetworkConfig::loopback(),
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            mempool: MempoolLimits::default(),
            block: BlockLimitsConfig::default(),
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
            epcis_gateway: None,
            personal: PersonalConfig::default(),
        }
    }

    /// Reads a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > CONFIG_SIZE_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, String> {
        #[cfg(not(feature = "fault-injection"))]
        refuse_faults(text)?;
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        for (field, value) in [
            ("empty_block_delay_ms", config.block.empty_block_delay_ms),
            ("interval_min_ms", config.block.interval_min_ms),
        ] {
            if value > EMPTY_BLOCK_DELAY_MS_MAX {
                return Err(format!(
                    "block.{field} is {value}; at most {EMPTY_BLOCK_DELAY_MS_MAX} (half the propose timeout)"
                ));
            }
        }
        // Every event the mempool admits must fit a block, and every block a sync answer.
        let size = config.block.size_bytes_max;
        if !(EVENT_SIZE_BYTES_MAX..=BLOCK_PAYLOAD_BYTES_MAX).contains(&size) {
            return Err(format!(
                "block.size_bytes_max is {size}; it must be between {EVENT_SIZE_BYTES_MAX} (one \
                 event of the largest size) and {BLOCK_PAYLOAD_BYTES_MAX}"
            ));
        }
        let events = config.block.events_max;
        if !(1..=BLOCK_EVENTS_MAX).contains(&events) {
            return Err(format!(
                "block.events_max is {events}; it must be between 1 and {BLOCK_EVENTS_MAX}"
            ));
        }
        let peers = &config.personal.peers;
        if peers.len() > PERSONAL_PEERS_MAX {
            return Err(format!(
                "personal.peers has {} entries; at most {PERSONAL_PEERS_MAX}",
                peers.len()
            ));
        }
        if let Some(bad) = peers
            .iter()
            .find(|p| !(p.starts_with("http://") || p.starts_with("https://")))
        {
            return Err(format!(
                "personal.peers: {bad:?} is not an http:// or https:// URL"
            ));
        }
        if let Some(gateway) = &config.epcis_gateway {
            if gateway.api_token.chars().count() < EPCIS_TOKEN_CHARS_MIN {
                return Err(format!(
                    "epcis_gateway.api_token must have at least {EPCIS_TOKEN_CHARS_MIN} characters"
                ));
            }
        }
        Ok(config)
    }

    /// The TOML form.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a configuration serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config::new(
            "seller",
            "/tmp/custody/seller",
            "/tmp/custody/seller/node.pem",
            "/tmp/custody/genesis.json",
        )
    }

    #[test]
    fn new_sets_the_files_and_defaults_the_rest() {
        let config = sample();
        assert_eq!(config.moniker, "seller");
        assert_eq!(config.genesis_file, Path::new("/tmp/custody/genesis.json"));
        assert_eq!(config.consensus, NetworkConfig::loopback());
        assert_eq!(config.http.listen.port(), 0);
        assert_eq!(config.block, BlockLimitsConfig::default());
        assert!(config.personal.is_empty() && config.epcis_gateway.is_none());
        #[cfg(feature = "fault-injection")]
        assert!(config.faults.is_none());
    }

    /// The `[faults]` table of the test rig's Byzantine validators.
    const FAULTS: &str = "\n[faults]\nequivocate = true\nmalformed_consensus_frames = true\n";

    #[cfg(not(feature = "fault-injection"))]
    #[test]
    fn a_faults_table_is_refused_by_a_build_without_fault_injection() {
        let honest = sample().to_toml();
        for text in [
            format!("{honest}{FAULTS}"),
            format!("{honest}\n[faults]\n"),
            // A top-level key must come before the first table.
            format!("faults = {{ panic_at_height = 3 }}\n{honest}"),
        ] {
            let error = Config::parse(&text).expect_err("no fault injection here");
            assert!(
                error.starts_with("faults:") && error.contains("no fault injection"),
                "{error}"
            );
        }
        // Still the usual message for a malformed file.
        let error = Config::parse("moniker = ").expect_err("malformed");
        assert!(!error.contains("fault"), "{error}");
    }

    #[cfg(feature = "fault-injection")]
    #[test]
    fn faults_round_trip_and_are_absent_from_an_honest_configuration() {
        let honest = sample().to_toml();
        assert!(!honest.contains("faults"), "{honest}");
        let config = Config::parse(&format!("{honest}{FAULTS}")).expect("parses");
        assert_eq!(
            config.faults,
            Faults {
                equivocate: true,
                malformed_consensus_frames: true,
                ..Faults::default()
            }
        );
        assert_eq!(Config::parse(&config.to_toml()), Ok(config));
        let error = Config::parse(&format!("{honest}\n[faults]\nequivocates = true\n"))
            .expect_err("unknown fault");
        assert!(error.contains("equivocates"), "{error}");
    }

    #[test]
    fn round_trips_through_toml() {
        let config = sample();
        assert_eq!(Config::parse(&config.to_toml()), Ok(config));
        let mut with_peers = sample();
        with_peers.personal.peers = vec!["http://127.0.0.1:8081".into()];
        let text = with_peers.to_toml();
        assert!(text.contains("[personal]"), "{text}");
        assert_eq!(Config::parse(&text), Ok(with_peers));
    }

    #[test]
    fn a_personal_peer_must_be_an_http_url() {
        let mut config = sample();
        config.personal.peers = vec!["127.0.0.1:8081".into()];
        let error = Config::parse(&config.to_toml()).expect_err("not a URL");
        assert!(error.contains("personal.peers"), "{error}");
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let text = sample().to_toml().replace("moniker", "monicker");
        let err = Config::parse(&text).expect_err("unknown field");
        assert!(err.contains("monicker"), "{err}");
        let text = sample()
            .to_toml()
            .replace("key_file = \"/tmp/custody/seller/node.pem\"\n", "");
        let err = Config::parse(&text).expect_err("missing field");
        assert!(err.contains("key_file"), "{err}");
    }

    #[test]
    fn an_empty_block_delay_near_the_propose_timeout_is_refused_and_a_missing_one_defaults() {
        let mut config = sample();
        config.block.empty_block_delay_ms = EMPTY_BLOCK_DELAY_MS_MAX + 1;
        let error = Config::parse(&config.to_toml()).expect_err("too long a delay");
        assert!(error.contains("block.empty_block_delay_ms"), "{error}");
        let without = sample()
            .to_toml()
            .lines()
            .filter(|line| !line.starts_with("empty_block_delay_ms"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            Config::parse(&without)
                .expect("parses")
                .block
                .empty_block_delay_ms,
            1_000
        );
    }
}
