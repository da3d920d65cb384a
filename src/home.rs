//! The cluster home: the one folder that describes a cluster to its nodes
//! and to its clients.
//!
//! `dynamo up` makes a home; every other command finds the cluster through
//! it. A home holds the manifest (`cluster.toml`), the cluster CA
//! (`ca.pem`, and `ca.key` readable only by its owner), the client identity
//! the commands use (`client.pem`, `client.key`) and one folder per node:
//!
//! ```text
//! <home>/cluster.toml  ca.pem  ca.key  client.pem  client.key
//! <home>/n1/node.toml  node.pem  node.key  data/  node.log  node.pid
//! ```
//!
//! Paths inside `node.toml` are relative to the node's folder, so a home can
//! be moved or copied as a whole. Copying `cluster.toml`, `ca.pem`,
//! `client.pem` and `client.key` to another machine is all a client there
//! needs. [`Home::create`] checks the cluster's settings before it writes
//! anything, and writes `cluster.toml` last: a home *exists* once its
//! manifest does.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::{
    ClusterManifest, ConfigError, Durability, MemberEntry, NodeConfig, StorageConfig, TlsPaths,
    REQUEST_TIMEOUT_MS_DEFAULT, VALUE_BYTES_MAX_DEFAULT,
};
use crate::net::tls::{ClusterCa, Credentials, Identity, TlsError};

/// The environment variable that names a cluster home.
pub const HOME_ENV: &str = "DYNAMO_HOME";
/// Mode of every private-key file a home holds: owner read/write only.
pub const KEY_FILE_MODE: u32 = 0o600;

/// Errors making or reading a cluster home.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// The requested cluster does not make sense; nothing was written.
    #[error("invalid cluster settings: {0}")]
    InvalidSpec(String),
    /// `create` was pointed at a folder that already holds a cluster.
    #[error("{} already holds a cluster", .0.display())]
    AlreadyExists(PathBuf),
    /// `create` was pointed at a folder that holds other files.
    #[error("{} is not empty; make the cluster in a new or empty folder", .0.display())]
    NotEmpty(PathBuf),
    /// There is no cluster in this home (its `cluster.toml` is missing).
    #[error("no cluster at {}: start one with `dynamo up`, or point --home / DYNAMO_HOME at its home", .0.display())]
    NotFound(PathBuf),
    /// A file or folder could not be read or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Free ports for the nodes could not be found.
    #[error("cannot find free UDP ports on 127.0.0.1: {0}")]
    NoFreePorts(std::io::Error),
    /// A configuration file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be made or loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Runtime threads of each dev-cluster node (see [`NodeConfig::runtime_threads`]).
pub const DEV_RUNTIME_THREADS: usize = 1;

/// What [`Home::create`] should make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The cluster's name (goes into its CA certificate).
    pub name: String,
    /// How many nodes; they are named `n1` to `nN`.
    pub nodes: usize,
    /// N: replicas per key.
    pub replicas: usize,
    /// R: replies a get waits for.
    pub read_quorum: usize,
    /// W: acknowledgements a put waits for.
    pub write_quorum: usize,
    /// Q: partitions of the ring.
    pub partitions: u32,
    /// The first node listens on `127.0.0.1:base_port`, the next one port
    /// higher, and so on; `0` picks free UDP ports.
    pub base_port: u16,
    /// How every node commits writes.
    pub durability: Durability,
}

impl Default for ClusterSpec {
    /// Five nodes, N=3, R=2, W=2, Q=64, ports from 7101.
    fn default() -> Self {
        Self {
            name: "dynamo-dev".into(),
            nodes: 5,
            replicas: 3,
            read_quorum: 2,
            write_quorum: 2,
            partitions: 64,
            base_port: 7101,
            durability: Durability::Immediate,
        }
    }
}

impl ClusterSpec {
    /// The node names this spec makes: `n1` to `nN`.
    pub fn node_names(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }

    /// The manifest this spec describes, with these addresses.
    fn manifest(&self, addrs: &[(SocketAddr, SocketAddr)]) -> ClusterManifest {
        ClusterManifest {
            name: self.name.clone(),
            replicas: self.replicas,
            read_quorum: self.read_quorum,
            write_quorum: self.write_quorum,
            partitions: self.partitions,
            value_bytes_max: VALUE_BYTES_MAX_DEFAULT,
            owners: None,
            nodes: self
                .node_names()
                .into_iter()
                .zip(addrs)
                .map(|(name, (addr, http))| MemberEntry {
                    name,
                    addr: *addr,
                    http: Some(*http),
                })
                .collect(),
        }
    }

    /// Checks everything that can be checked without touching the disk.
    fn validate(&self) -> Result<(), HomeError> {
        if self.name.trim().is_empty() {
            return Err(HomeError::InvalidSpec("the cluster name is empty".into()));
        }
        if self.nodes == 0 {
            return Err(HomeError::InvalidSpec("the cluster has no nodes".into()));
        }
        if self.base_port != 0 && usize::from(self.base_port) + self.nodes - 1 > 65535 {
            return Err(HomeError::InvalidSpec(format!(
                "{} nodes from base port {} run past port 65535",
                self.nodes, self.base_port
            )));
        }
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let placeholder = vec![(any, any); self.nodes];
        self.manifest(&placeholder)
            .validate()
            .map_err(HomeError::InvalidSpec)
    }

    /// The addresses the nodes listen on: QUIC (UDP) and HTTPS (TCP). With
    /// a base port both use the same port number; else free ports of each.
    fn addresses(&self) -> Result<Vec<(SocketAddr, SocketAddr)>, HomeError> {
        if self.base_port != 0 {
            return Ok((0..self.nodes)
                .map(|i| {
                    // `validate` checked that the ports fit.
                    let port = u16::try_from(usize::from(self.base_port) + i).unwrap_or(u16::MAX);
                    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    (addr, addr)
                })
                .collect());
        }
        // Hold every socket until all are bound, so the ports are distinct.
        let sockets = (0..self.nodes)
            .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HomeError::NoFreePorts)?;
        let listeners = (0..self.nodes)
            .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HomeError::NoFreePorts)?;
        sockets
            .iter()
            .zip(&listeners)
            .map(|(s, l)| {
                let udp = s.local_addr().map_err(HomeError::NoFreePorts)?;
                let tcp = l.local_addr().map_err(HomeError::NoFreePorts)?;
                Ok((udp, tcp))
            })
            .collect()
    }
}

/// A cluster home folder. Making a `Home` touches nothing; [`Home::exists`]
/// says whether a cluster is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root` (made absolute against the current folder).
    pub fn at(root: impl Into<PathBuf>) -> Home {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Home { root }
    }

    /// Finds the home: `explicit` when given, else `$DYNAMO_HOME`, else the
    /// per-user default ([`Home::default_root`]).
    pub fn locate(explicit: Option<PathBuf>) -> Home {
        let root = explicit
            .or_else(|| {
                std::env::var_os(HOME_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(Home::default_root);
        Home::at(root)
    }

    /// The per-user default home: `$XDG_DATA_HOME/dynamo/cluster`, else
    /// `$HOME/.local/share/dynamo/cluster`, else `.dynamo/cluster` in the
    /// current folder.
    pub fn default_root() -> PathBuf {
        let absolute_var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        if let Some(data) = absolute_var("XDG_DATA_HOME") {
            return data.join("dynamo").join("cluster");
        }
        if let Some(home) = absolute_var("HOME") {
            return home.join(".local/share/dynamo/cluster");
        }
        PathBuf::from(".dynamo/cluster")
    }

    /// Makes a new cluster home at `root`: a CA, a certificate per node
    /// (`n1`…`nN`) and for the client, `cluster.toml` and each `node.toml`.
    ///
    /// The settings are checked before anything is written. A folder made
    /// here is removed again if a later step fails.
    pub fn create(root: impl Into<PathBuf>, spec: &ClusterSpec) -> Result<Home, HomeError> {
        let home = Home::at(root);
        spec.validate()?;
        if home.exists() {
            return Err(HomeError::AlreadyExists(home.root));
        }
        // A home is deleted as a whole by `dynamo down --purge`: never
        // make one among other files.
        if std::fs::read_dir(&home.root).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(HomeError::NotEmpty(home.root));
        }
        let addrs = spec.addresses()?;
        let manifest = spec.manifest(&addrs);
        manifest.validate().map_err(HomeError::InvalidSpec)?;

        let made_root = !home.root.exists();
        let result = home.write_all(spec, &manifest);
        if result.is_err() && made_root {
            // Best effort: leave no half-made home behind.
            let _ = std::fs::remove_dir_all(&home.root);
        }
        result.map(|()| home)
    }

    fn write_all(&self, spec: &ClusterSpec, manifest: &ClusterManifest) -> Result<(), HomeError> {
        mkdir(&self.root)?;
        let ca = ClusterCa::generate(&spec.name)?;
        write_file(&self.ca_cert(), &ca.cert_pem)?;
        write_key(&self.ca_key(), &ca.key_pem)?;
        let client = ca.issue(&Identity::Client)?;
        write_file(&self.client_cert(), &client.cert_pem)?;
        write_key(&self.client_key(), &client.key_pem)?;
        for member in &manifest.nodes {
            self.write_node(&ca, member, spec.durability)?;
        }
        manifest.save(&self.manifest())?;
        Ok(())
    }

    fn write_node(
        &self,
        ca: &ClusterCa,
        member: &MemberEntry,
        durability: Durability,
    ) -> Result<(), HomeError> {
        let name = &member.name;
        mkdir(&self.node_data_dir(name))?;
        let mut hosts = vec![member.addr.ip()];
        hosts.extend(
            member
                .http
                .map(|a| a.ip())
                .filter(|ip| *ip != member.addr.ip()),
        );
        let cert = ca.issue_for_hosts(&Identity::Node(name.clone()), &hosts)?;
        write_file(&self.node_cert(name), &cert.cert_pem)?;
        write_key(&self.node_key(name), &cert.key_pem)?;
        let config = NodeConfig {
            name: name.clone(),
            listen: member.addr,
            http_listen: member.http,
            data_dir: PathBuf::from(NODE_DATA_DIR),
            log_file: Some(PathBuf::from(NODE_LOG)),
            cluster: Path::new("..").join(MANIFEST),
            tls: TlsPaths {
                ca_cert: Path::new("..").join(CA_CERT),
                cert: PathBuf::from(NODE_CERT),
                key: PathBuf::from(NODE_KEY),
            },
            storage: StorageConfig {
                durability,
                ..StorageConfig::default()
            },
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            runtime_threads: DEV_RUNTIME_THREADS,
            tombstone_grace_ms: crate::core::tombstone::TOMBSTONE_GRACE_MS_DEFAULT,
            seeds: Vec::new(),
        };
        config.save(&self.node_config(name))?;
        Ok(())
    }

    /// Makes the folder, certificate and `node.toml` of a node that will
    /// join the running cluster through `seeds` (`dynamo add-node`): its
    /// settings are copied from `template`'s, its certificate is issued by
    /// the home's CA. The manifest is not touched.
    pub fn add_node(
        &self,
        member: &MemberEntry,
        template: &str,
        seeds: Vec<MemberEntry>,
    ) -> Result<(), HomeError> {
        crate::config::validate_node_name(&member.name).map_err(HomeError::InvalidSpec)?;
        if self.node_dir(&member.name).exists() {
            return Err(HomeError::InvalidSpec(format!(
                "{} already exists",
                self.node_dir(&member.name).display()
            )));
        }
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| HomeError::Io { path, source })
        };
        let ca = ClusterCa {
            cert_pem: read(self.ca_cert())?,
            key_pem: read(self.ca_key())?,
        };
        let template = self.load_node_config(template)?;
        self.write_node(&ca, member, template.storage.durability)?;
        let path = self.node_config(&member.name);
        let mut config = NodeConfig::load(&path)?;
        config.storage = template.storage;
        config.request_timeout_ms = template.request_timeout_ms;
        config.runtime_threads = template.runtime_threads;
        config.tombstone_grace_ms = template.tombstone_grace_ms;
        config.seeds = seeds;
        config.save(&path)?;
        Ok(())
    }

    /// Sets how every node commits writes (from its next start on).
    pub fn set_durability(&self, durability: Durability) -> Result<(), HomeError> {
        for member in &self.load_manifest()?.nodes {
            let path = self.node_config(&member.name);
            let mut config = NodeConfig::load(&path)?;
            config.storage.durability = durability;
            config.save(&path)?;
        }
        Ok(())
    }

    /// Sets every node's tombstone grace period (from its next start on).
    pub fn set_tombstone_grace(&self, grace_ms: u64) -> Result<(), HomeError> {
        for member in &self.load_manifest()?.nodes {
            let path = self.node_config(&member.name);
            let mut config = NodeConfig::load(&path)?;
            config.tombstone_grace_ms = grace_ms;
            config.save(&path)?;
        }
        Ok(())
    }

    /// The home folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a cluster lives here (its manifest exists).
    pub fn exists(&self) -> bool {
        self.manifest().is_file()
    }

    /// Reads and checks `cluster.toml`.
    pub fn load_manifest(&self) -> Result<ClusterManifest, HomeError> {
        if !self.exists() {
            return Err(HomeError::NotFound(self.root.clone()));
        }
        Ok(ClusterManifest::load(&self.manifest())?)
    }

    /// Loads the client identity commands use to reach the cluster.
    pub fn client_credentials(&self) -> Result<Credentials, HomeError> {
        Ok(Credentials::load(
            &self.ca_cert(),
            &self.client_cert(),
            &self.client_key(),
        )?)
    }

    /// Reads a node's `node.toml`, its paths resolved.
    pub fn load_node_config(&self, name: &str) -> Result<NodeConfig, HomeError> {
        Ok(NodeConfig::load(&self.node_config(name))?)
    }

    /// `cluster.toml`, the manifest.
    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    /// `ca.pem`, the cluster CA's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join(CA_CERT)
    }

    /// `ca.key`, the cluster CA's private key.
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// `client.pem`, the client identity's certificate.
    pub fn client_cert(&self) -> PathBuf {
        self.root.join("client.pem")
    }

    /// `client.key`, the client identity's private key.
    pub fn client_key(&self) -> PathBuf {
        self.root.join("client.key")
    }

    /// A node's folder.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A node's `node.toml`.
    pub fn node_config(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(NODE_CONFIG)
    }

    /// A node's certificate.
    pub fn node_cert(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(NODE_CERT)
    }

    /// A node's private key.
    pub fn node_key(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(NODE_KEY)
    }

    /// A node's data folder.
    pub fn node_data_dir(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(NODE_DATA_DIR)
    }

    /// A node's log file.
    pub fn node_log(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(NODE_LOG)
    }

    /// The file holding the pid of a node the dev cluster started.
    pub fn node_pid(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("node.pid")
    }
}

const MANIFEST: &str = "cluster.toml";
const CA_CERT: &str = "ca.pem";
const NODE_CONFIG: &str = "node.toml";
const NODE_CERT: &str = "node.pem";
const NODE_KEY: &str = "node.key";
const NODE_DATA_DIR: &str = "data";
const NODE_LOG: &str = "node.log";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn mkdir(path: &Path) -> Result<(), HomeError> {
    std::fs::create_dir_all(path).map_err(io_error(path))
}

fn write_file(path: &Path, text: &str) -> Result<(), HomeError> {
    std::fs::write(path, text).map_err(io_error(path))
}

/// Writes a private key, readable by its owner only from the first byte on.
fn write_key(path: &Path, pem: &str) -> Result<(), HomeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(KEY_FILE_MODE)
        .open(path)
        .map_err(io_error(path))?;
    // `mode` applies only when the file is created; make sure either way.
    file.set_permissions(std::fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(io_error(path))?;
    file.write_all(pem.as_bytes()).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: usize) -> ClusterSpec {
        ClusterSpec {
            nodes,
            base_port: 0,
            name: "test".into(),
            ..ClusterSpec::default()
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path().join("home"), &spec(5)).unwrap();
        assert!(home.exists());
        for path in [home.manifest(), home.ca_cert(), home.ca_key()] {
            assert!(path.is_file(), "{} missing", path.display());
        }
        assert!(home.client_cert().is_file() && home.client_key().is_file());
        for name in spec(5).node_names() {
            assert!(home.node_config(&name).is_file());
            assert!(home.node_cert(&name).is_file());
            assert!(home.node_key(&name).is_file());
            assert!(home.node_data_dir(&name).is_dir());
        }
        home.client_credentials().unwrap();
    }

    #[test]
    fn private_keys_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &spec(3)).unwrap();
        assert_eq!(mode(&home.ca_key()), 0o600);
        assert_eq!(mode(&home.client_key()), 0o600);
        for name in spec(3).node_names() {
            assert_eq!(mode(&home.node_key(&name)), 0o600);
        }
    }

    #[test]
    fn manifest_loads_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &spec(5)).unwrap();
        let manifest = home.load_manifest().unwrap();
        assert_eq!(manifest.nodes.len(), 5);
        assert_eq!((manifest.replicas, manifest.read_quorum), (3, 2));
        assert_eq!(manifest.write_quorum, 2);
        assert_eq!(manifest.partitions, 64);
        let mut ports: Vec<u16> = manifest.nodes.iter().map(|n| n.addr.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5, "free ports are distinct");
        assert!(ports.iter().all(|p| *p != 0));
    }

    #[test]
    fn base_port_numbers_the_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ClusterSpec {
            base_port: 7300,
            ..spec(3)
        };
        let manifest = Home::create(dir.path(), &spec)
            .unwrap()
            .load_manifest()
            .unwrap();
        let addrs: Vec<String> = manifest.nodes.iter().map(|n| n.addr.to_string()).collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:7300", "127.0.0.1:7301", "127.0.0.1:7302"]
        );
    }

    #[test]
    fn node_configs_resolve_into_the_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &spec(3)).unwrap();
        let manifest = home.load_manifest().unwrap();
        let config = home.load_node_config("n2").unwrap();
        assert_eq!(config.name, "n2");
        assert_eq!(Some(config.listen), manifest.member("n2").map(|m| m.addr));
        assert_eq!(config.data_dir, home.node_dir("n2").join("data"));
        assert_eq!(config.log_file, Some(home.node_log("n2")));
        assert_eq!(config.tls.cert, home.node_cert("n2"));
        assert_eq!(config.tls.key, home.node_key("n2"));
        // `..` is kept, but it leads to the home's files.
        assert_eq!(
            std::fs::canonicalize(&config.cluster).unwrap(),
            std::fs::canonicalize(home.manifest()).unwrap()
        );
        assert_eq!(
            std::fs::canonicalize(&config.tls.ca_cert).unwrap(),
            std::fs::canonicalize(home.ca_cert()).unwrap()
        );
        ClusterManifest::load(&config.cluster).unwrap();
    }

    #[test]
    fn invalid_spec_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        let bad = ClusterSpec {
            replicas: 4,
            ..spec(3)
        };
        let err = Home::create(&root, &bad).unwrap_err();
        assert!(matches!(err, HomeError::InvalidSpec(_)), "{err}");
        assert!(!root.exists());
        let bad = ClusterSpec {
            base_port: 65534,
            ..spec(3)
        };
        assert!(matches!(
            Home::create(&root, &bad),
            Err(HomeError::InvalidSpec(_))
        ));
        assert!(!root.exists());
    }

    #[test]
    fn create_refuses_an_existing_cluster() {
        let dir = tempfile::tempdir().unwrap();
        Home::create(dir.path(), &spec(3)).unwrap();
        assert!(matches!(
            Home::create(dir.path(), &spec(3)),
            Err(HomeError::AlreadyExists(_))
        ));
    }

    #[test]
    fn create_refuses_a_folder_with_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            Home::create(dir.path(), &spec(3)),
            Err(HomeError::NotEmpty(_))
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_home_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("nothing"));
        assert!(!home.exists());
        assert!(matches!(home.load_manifest(), Err(HomeError::NotFound(_))));
    }

    #[test]
    fn locate_prefers_the_explicit_folder() {
        let home = Home::locate(Some(PathBuf::from("/tmp/some-home")));
        assert_eq!(home.root(), Path::new("/tmp/some-home"));
        assert_eq!(home.node_pid("n1"), Path::new("/tmp/some-home/n1/node.pid"));
        assert!(Home::locate(Some(PathBuf::from("rel")))
            .root()
            .is_absolute());
    }
}
