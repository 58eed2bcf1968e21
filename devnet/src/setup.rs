//! Creating a devnet directory (keys, genesis, node configurations with their ports) and
//! loading it again, so that a second `up` resumes the same chain on the same ports.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use custody_client::build::Signer;
use custody_client::keyfile;
use custody_ledger::genesis::{Genesis, GenesisMember};
use custody_ledger::model::{MemberId, RulesActivation};
use custody_ledger::{Keypair, Timestamp};
use custody_node::config::{Config, EpcisGatewayConfig, HttpConfig, NetworkConfig};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::roster::{self, VALIDATORS_MAX, VALIDATORS_MIN};

/// The manifest of a devnet directory, `devnet.json`. It is written last when a devnet is
/// created, so its presence means the directory is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash, hex (checked against `genesis.json` on load).
    pub genesis_hash: String,
    /// When the directory was created (RFC 3339).
    pub created_at: String,
    /// Members whose signing keys are in `keys/`.
    pub members: Vec<String>,
    /// The nodes, validators first.
    pub nodes: Vec<NodeEntry>,
}

/// A node in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Short name (directory and moniker).
    pub name: String,
    /// The member that runs it.
    pub member: String,
    /// Whether it votes.
    pub validator: bool,
}

/// A node of a loaded devnet: its manifest entry and its configuration.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Manifest entry.
    pub entry: NodeEntry,
    /// Its configuration file.
    pub config_file: PathBuf,
    /// Its configuration.
    pub config: Config,
}

impl NodeInfo {
    /// The node's short name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.config.http.listen
    }

    /// The HTTP API base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr())
    }

    /// Every TCP port the node listens on, with what it is for.
    pub fn ports(&self) -> Vec<(&'static str, u16)> {
        let mut ports = vec![("http", self.config.http.listen.port())];
        for (what, network) in [
            ("consensus", &self.config.consensus),
            ("gossip", &self.config.gossip),
        ] {
            if let Some(port) = multiaddr_port(&network.listen) {
                ports.push((what, port));
            }
        }
        ports
    }
}

/// The TCP port of a `/ip4/…/tcp/PORT` multiaddress.
fn multiaddr_port(addr: &str) -> Option<u16> {
    let mut parts = addr.split('/');
    parts.find(|p| *p == "tcp")?;
    parts.next()?.parse().ok()
}

/// A devnet directory, loaded.
#[derive(Debug, Clone)]
pub struct Devnet {
    /// Its files.
    pub layout: Layout,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its genesis.
    pub genesis: Genesis,
    /// Its nodes, in manifest order (validators first).
    pub nodes: Vec<NodeInfo>,
}

impl Devnet {
    /// The validators.
    pub fn validators(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(|n| n.entry.validator)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.entry.name == name)
    }

    /// The node a member runs.
    pub fn node_of(&self, member: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.entry.member == member)
    }

    /// A member's signer, from its key file.
    pub fn signer(&self, member: &str) -> anyhow::Result<Signer> {
        let key = keyfile::read_key(&self.layout.member_key(member))?;
        Ok(Signer::new(key, self.genesis.chain_id.clone()))
    }

    /// Fails with a clear message naming the node if one of the stored ports is in use.
    pub fn check_ports_free(&self) -> anyhow::Result<()> {
        for node in &self.nodes {
            for (what, port) in node.ports() {
                if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
                    bail!(
                        "port {port} of node `{}` ({what}) on 127.0.0.1 is busy: {e}. Another \
                         program (or this devnet, still running) holds it; stop it \
                         (`custody-devnet down --dir {}`) or free the port. The ports are \
                         stored in {}",
                        node.name(),
                        self.layout.dir().display(),
                        node.config_file.display()
                    );
                }
            }
        }
        Ok(())
    }
}

/// Picks `count` distinct free TCP ports on 127.0.0.1 by binding them all at once, then
/// releasing them.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn p2p_addr(port: u16, node_key: &custody_ledger::PublicKey) -> anyhow::Result<String> {
    let peer = custody_node::keys::peer_id(node_key)
        .ok_or_else(|| anyhow!("node key {node_key} is not a valid libp2p key"))?;
    Ok(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}"))
}

/// Creates a devnet with `validators` validators in `layout`'s directory, which must be empty
/// or missing: new keys for every member and node, a genesis starting at `now`, and a
/// configuration per node with free ports chosen now.
pub fn create(layout: &Layout, validators: usize, now: Timestamp) -> anyhow::Result<Devnet> {
    if !(VALIDATORS_MIN..=VALIDATORS_MAX).contains(&validators) {
        bail!(
            "--validators must be between {VALIDATORS_MIN} and {VALIDATORS_MAX}, not {validators}"
        );
    }
    let dir = layout.dir();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty and holds no devnet.json: it is not a (complete) devnet \
             directory. Choose a new or empty --dir, or delete this one to start over.",
            dir.display()
        );
    }
    let specs = roster::members(validators);
    std::fs::create_dir_all(layout.keys_dir())?;

    // Keys first: every member's signing key, every node's key.
    let mut members = Vec::with_capacity(specs.len());
    let mut node_keys = Vec::new();
    for spec in &specs {
        let key = keyfile::generate();
        keyfile::write_key(&layout.member_key(&spec.id), &key)?;
        let node_key = match &spec.node {
            Some(node) => {
                std::fs::create_dir_all(layout.node_dir(&node.name))?;
                let node_key = keyfile::generate();
                keyfile::write_key(&layout.node_key(&node.name), &node_key)?;
                node_keys.push((node.clone(), spec.id.clone(), node_key.public()));
                Some(node_key.public())
            }
            None => None,
        };
        members.push(GenesisMember {
            id: MemberId::new(spec.id.clone()),
            name: spec.name.clone(),
            roles: spec.roles.clone(),
            key: key.public(),
            node_key,
            voting_power: u64::from(spec.node.as_ref().is_some_and(|n| n.validator)),
        });
    }

    // The genesis.
    let tag = &keyfile::generate().public().to_hex()[..8];
    let genesis = Genesis {
        chain_id: format!("custody-devnet-{tag}"),
        genesis_time: now,
        admin_quorum: roster::ADMIN_QUORUM,
        members,
        // A new network starts on the newest rules (version 2 carries the regime fixes of
        // issue 14); networks founded on version 1 keep it until their admins schedule one.
        rules_schedule: vec![RulesActivation {
            version: custody_contracts::registry::LATEST_RULES_VERSION,
            from_height: 1,
        }],
    };
    genesis
        .validate()
        .map_err(|e| anyhow!("the generated genesis is invalid: {e}"))?;
    write_json(&layout.genesis(), &genesis)?;

    // Node configurations: three ports each (HTTP, consensus, gossip), every other node a peer.
    let ports = free_ports(3 * node_keys.len())?;
    let port = |i: usize, which: usize| ports[3 * i + which];
    for (i, (node, member, _)) in node_keys.iter().enumerate() {
        let others = |which: usize| -> anyhow::Result<Vec<String>> {
            node_keys
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, (_, _, key))| p2p_addr(port(j, which), key))
                .collect()
        };
        let mut config = Config::new(
            node.name.clone(),
            layout.node_data(&node.name),
            layout.node_key(&node.name),
            layout.genesis(),
        );
        config.consensus = NetworkConfig {
            listen: format!("/ip4/127.0.0.1/tcp/{}", port(i, 1)),
            peers: others(1)?,
        };
        config.gossip = NetworkConfig {
            listen: format!("/ip4/127.0.0.1/tcp/{}", port(i, 2)),
            peers: others(2)?,
        };
        config.http = HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port(i, 0))),
        };
        config.epcis_gateway = gateway_for(layout, member);
        // Every other node's API: a node asks them for the personal data of shipments its
        // member becomes a party of; only parties' nodes answer.
        config.personal = custody_node::config::PersonalConfig {
            peers: (0..node_keys.len())
                .filter(|j| *j != i)
                .map(|j| format!("http://127.0.0.1:{}", port(j, 0)))
                .collect(),
        };
        let path = layout.node_config(&node.name);
        std::fs::write(&path, config.to_toml())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    // The manifest, last: its presence marks a complete directory.
    let mut nodes: Vec<NodeEntry> = node_keys
        .iter()
        .map(|(node, member, _)| NodeEntry {
            name: node.name.clone(),
            member: member.clone(),
            validator: node.validator,
        })
        .collect();
    nodes.sort_by_key(|n| !n.validator);
    let manifest = Manifest {
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash().to_hex(),
        created_at: now.to_rfc3339(),
        members: specs.iter().map(|s| s.id.clone()).collect(),
        nodes,
    };
    write_json(&layout.manifest(), &manifest)?;
    load(layout)
}

/// The EPCIS capture gateway of the carrier's node: the carrier signs the tracking scans its
/// hub systems post (they speak EPCIS and hold no key). The token is 64 random hex digits,
/// kept in the node's configuration, which the demo reads.
fn gateway_for(layout: &Layout, member: &str) -> Option<EpcisGatewayConfig> {
    (member == roster::CARRIER).then(|| EpcisGatewayConfig {
        member_key_file: layout.member_key(member),
        api_token: keyfile::generate().public().to_hex(),
        schema_file: None,
    })
}

/// Loads an existing devnet directory, checking that its files agree with each other.
pub fn load(layout: &Layout) -> anyhow::Result<Devnet> {
    let manifest: Manifest = custody_client::verify::read_json(
        &layout.manifest(),
        "devnet manifest",
        custody_client::verify::GENESIS_FILE_SIZE_BYTES_MAX,
    )?;
    let genesis = custody_client::verify::read_genesis(&layout.genesis())?;
    if genesis.hash().to_hex() != manifest.genesis_hash {
        bail!(
            "{} has hash {}, but {} was created with genesis {}; the directory was changed by hand",
            layout.genesis().display(),
            genesis.hash(),
            layout.manifest().display(),
            manifest.genesis_hash
        );
    }
    for member in &manifest.members {
        let path = layout.member_key(member);
        let key = keyfile::read_key(&path)?;
        let listed = genesis.members.iter().find(|m| m.id.as_str() == member);
        if listed.map(|m| m.key) != Some(key.public()) {
            bail!(
                "{} is not the key genesis lists for member {member}",
                path.display()
            );
        }
    }
    let mut nodes = Vec::with_capacity(manifest.nodes.len());
    for entry in &manifest.nodes {
        let config_file = layout.node_config(&entry.name);
        let config = Config::load(&config_file)?;
        let key: Keypair = keyfile::read_key(&config.key_file)?;
        let listed = genesis
            .members
            .iter()
            .find(|m| m.id.as_str() == entry.member);
        if listed.and_then(|m| m.node_key) != Some(key.public()) {
            bail!(
                "{} is not the node key genesis lists for member {}",
                config.key_file.display(),
                entry.member
            );
        }
        nodes.push(NodeInfo {
            entry: entry.clone(),
            config_file,
            config,
        });
    }
    Ok(Devnet {
        layout: layout.clone(),
        manifest,
        genesis,
        nodes,
    })
}

/// Loads the devnet in `layout`'s directory, or creates one there if the directory has no
/// manifest. Returns whether it was created. `validators`, when given, must match an existing
/// devnet.
pub fn open_or_create(
    layout: &Layout,
    validators: Option<usize>,
    now: Timestamp,
) -> anyhow::Result<(Devnet, bool)> {
    if !layout.manifest().exists() {
        let devnet = create(layout, validators.unwrap_or(VALIDATORS_MIN), now)?;
        return Ok((devnet, true));
    }
    let devnet = load(layout)?;
    let existing = devnet.validators().count();
    if let Some(wanted) = validators {
        if wanted != existing {
            bail!(
                "{} holds a devnet of {existing} validators; --validators {wanted} cannot change \
                 an existing genesis. Use another --dir for a network of {wanted}.",
                layout.dir().display()
            );
        }
    }
    Ok((devnet, false))
}

/// Now, from the system clock.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::model::Role;

    fn fresh() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(&dir.path().join("net")).expect("layout");
        (dir, layout)
    }

    #[test]
    fn a_new_devnet_has_a_valid_genesis_keys_and_distinct_ports() {
        let (_dir, layout) = fresh();
        let (devnet, created) = open_or_create(&layout, None, now()).expect("create");
        assert!(created);
        let genesis = &devnet.genesis;
        assert_eq!(genesis.validate(), Ok(()));
        assert_eq!(genesis.validators().len(), 4);
        // A new network runs the regime fixes (rules version 2) from its first block.
        assert_eq!(
            genesis.rules_schedule,
            [RulesActivation {
                version: 2,
                from_height: 1
            }]
        );
        assert_eq!(
            devnet.nodes.len(),
            5,
            "four validators and the auditor's node"
        );
        assert!(devnet.nodes[..4].iter().all(|n| n.entry.validator));
        assert_eq!(devnet.nodes[4].entry.member, roster::AUDITOR);
        assert!(!devnet.nodes[4].entry.validator);
        let roles = |id: &str| {
            genesis
                .members
                .iter()
                .find(|m| m.id.as_str() == id)
                .map(|m| m.roles.clone())
        };
        assert_eq!(roles(roster::SELLER), Some(vec![Role::Seller]));
        assert_eq!(roles(roster::CARRIER), Some(vec![Role::Carrier]));
        assert_eq!(roles(roster::LASTMILE), Some(vec![Role::Carrier]));
        assert_eq!(roles(roster::BROKER), Some(vec![Role::CustomsBroker]));
        assert_eq!(roles(roster::CUSTOMS), Some(vec![Role::CustomsAuthority]));
        assert_eq!(roles(roster::AUDITOR), Some(vec![Role::Auditor]));
        // Every member's key file signs for the key genesis lists.
        for member in &genesis.members {
            let signer = devnet.signer(member.id.as_str()).expect("key file");
            assert_eq!(signer.public(), member.key);
        }
        // Ports are distinct, and every node dials every other on both swarms.
        let mut ports: Vec<u16> = devnet
            .nodes
            .iter()
            .flat_map(|n| n.ports().into_iter().map(|(_, p)| p))
            .collect();
        assert_eq!(ports.len(), 15);
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 15, "ports are distinct");
        for node in &devnet.nodes {
            assert_eq!(node.config.consensus.peers.len(), 4);
            assert_eq!(node.config.gossip.peers.len(), 4);
            assert!(node.config.key_file.is_absolute());
            assert_eq!(node.config.genesis_file, layout.genesis());
        }
        devnet.check_ports_free().expect("nothing listens yet");
        // The keys are private.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(layout.member_key(roster::SELLER))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_second_open_reuses_keys_genesis_and_ports() {
        let (_dir, layout) = fresh();
        let (first, _) = open_or_create(&layout, Some(5), now()).expect("create");
        let genesis_bytes = std::fs::read(layout.genesis()).expect("genesis");
        let key_bytes = std::fs::read(layout.member_key(roster::SELLER)).expect("key");
        let (second, created) = open_or_create(&layout, None, now()).expect("open");
        assert!(!created);
        assert_eq!(second.genesis, first.genesis);
        assert_eq!(
            std::fs::read(layout.genesis()).expect("genesis"),
            genesis_bytes
        );
        assert_eq!(
            std::fs::read(layout.member_key(roster::SELLER)).expect("key"),
            key_bytes
        );
        let urls = |d: &Devnet| d.nodes.iter().map(NodeInfo::url).collect::<Vec<_>>();
        assert_eq!(urls(&second), urls(&first));
        assert_eq!(second.validators().count(), 5);
        // The same count is accepted; another is refused with a message naming both.
        open_or_create(&layout, Some(5), now()).expect("same count");
        let err = open_or_create(&layout, Some(4), now()).expect_err("other count");
        assert!(err.to_string().contains("5 validators"), "{err}");
    }

    #[test]
    fn a_busy_port_is_named_with_its_node() {
        let (_dir, layout) = fresh();
        let (devnet, _) = open_or_create(&layout, None, now()).expect("create");
        let broker = devnet.node("broker").expect("broker");
        let _held = TcpListener::bind(broker.http_addr()).expect("hold the port");
        let err = devnet.check_ports_free().expect_err("busy");
        let text = err.to_string();
        assert!(text.contains("`broker`") && text.contains("http"), "{text}");
        assert!(
            text.contains(&broker.http_addr().port().to_string()),
            "{text}"
        );
    }

    #[test]
    fn a_foreign_or_tampered_directory_is_refused() {
        let (_dir, layout) = fresh();
        std::fs::write(layout.dir().join("notes.txt"), "mine").expect("write");
        let err = open_or_create(&layout, None, now()).expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");

        let (_dir, layout) = fresh();
        open_or_create(&layout, None, now()).expect("create");
        let mut genesis: Genesis =
            serde_json::from_slice(&std::fs::read(layout.genesis()).expect("read")).expect("json");
        genesis.admin_quorum = 1;
        std::fs::write(
            layout.genesis(),
            serde_json::to_vec(&genesis).expect("json"),
        )
        .expect("write");
        let err = load(&layout).expect_err("tampered");
        assert!(err.to_string().contains("changed by hand"), "{err}");
    }

    #[test]
    fn too_few_or_too_many_validators_are_refused() {
        let (_dir, layout) = fresh();
        assert!(create(&layout, 3, now()).is_err());
        assert!(create(&layout, VALIDATORS_MAX + 1, now()).is_err());
    }
}
