//! Configuration files, read and written with serde + toml.
//!
//! Two files describe a cluster. `cluster.toml` (the *manifest*) lives in the
//! cluster home and names every member with its address plus the cluster-wide
//! settings (N, R, W, Q, limits); clients need only it and the certificates.
//! `node.toml` lives in each node's folder and says how one node runs: its
//! name, where it listens, where its data, log and certificates are, and how
//! durable its writes are. Relative paths in `node.toml` are resolved against
//! the folder that holds the file, so a home can be moved as a whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 1024;
/// Longest bucket name accepted, in bytes.
pub const BUCKET_BYTES_MAX: usize = 64;
/// Default limit for one value, in bytes (1 MiB).
pub const VALUE_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// The bucket used when none is named.
pub const DEFAULT_BUCKET: &str = "default";
/// Default for `request_timeout_ms` in `node.toml`.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 2000;

/// Errors reading or writing a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is not a valid configuration file: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The file parsed but its values do not make sense together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One member of the cluster as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    /// The node's name (`n1`); also inside its certificate.
    pub name: String,
    /// The UDP address its QUIC endpoint listens on.
    pub addr: SocketAddr,
    /// The TCP address it serves the HTTPS API on (HTTP.md), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<SocketAddr>,
}

/// `cluster.toml`: the members and the cluster-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterManifest {
    /// The cluster's name; context tokens carry a tag derived from it.
    pub name: String,
    /// N: replicas per key.
    pub replicas: usize,
    /// R: replies a get waits for.
    pub read_quorum: usize,
    /// W: acknowledgements a put waits for.
    pub write_quorum: usize,
    /// Q: partitions of the ring (a power of two).
    pub partitions: u32,
    /// Largest value accepted, in bytes.
    #[serde(default = "default_value_bytes_max")]
    pub value_bytes_max: usize,
    /// Every member, in ring order of their names.
    pub nodes: Vec<MemberEntry>,
    /// The owner of each partition after membership changes (`add-node`,
    /// `leave` write it); absent, the ring deals partitions round-robin.
    /// Nodes that have joined follow gossip, not this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
}

fn default_value_bytes_max() -> usize {
    VALUE_BYTES_MAX_DEFAULT
}

impl ClusterManifest {
    /// Reads and checks a manifest.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let manifest: Self = read_toml(path)?;
        manifest
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(manifest)
    }

    /// Writes the manifest.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_toml(path, self)
    }

    /// Checks that N, R, W, Q and the member list make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("the cluster has no nodes".into());
        }
        for node in &self.nodes {
            validate_node_name(&node.name)?;
        }
        let mut names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != self.nodes.len() {
            return Err("two nodes share a name".into());
        }
        if self.replicas == 0 || self.replicas > self.nodes.len() {
            return Err(format!(
                "replicas (N = {}) must be between 1 and the number of nodes ({})",
                self.replicas,
                self.nodes.len()
            ));
        }
        if self.read_quorum == 0 || self.read_quorum > self.replicas {
            return Err(format!(
                "read quorum (R = {}) must be between 1 and N = {}",
                self.read_quorum, self.replicas
            ));
        }
        if self.write_quorum == 0 || self.write_quorum > self.replicas {
            return Err(format!(
                "write quorum (W = {}) must be between 1 and N = {}",
                self.write_quorum, self.replicas
            ));
        }
        if !self.partitions.is_power_of_two() || !(1..=4096).contains(&self.partitions) {
            return Err(format!(
                "partitions (Q = {}) must be a power of two between 1 and 4096",
                self.partitions
            ));
        }
        if let Some(owners) = &self.owners {
            if owners.len() != self.partitions as usize {
                return Err(format!(
                    "owners names {} partitions; the ring has {}",
                    owners.len(),
                    self.partitions
                ));
            }
            if let Some(stranger) = owners.iter().find(|o| self.member(o).is_none()) {
                return Err(format!("owner {stranger:?} is not a member"));
            }
        }
        if (self.partitions as usize) < self.nodes.len() {
            return Err(format!(
                "partitions (Q = {}) must be at least the number of nodes ({})",
                self.partitions,
                self.nodes.len()
            ));
        }
        Ok(())
    }

    /// The member with this name.
    pub fn member(&self, name: &str) -> Option<&MemberEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The ring the manifest describes: its owner table if it has one,
    /// else partitions dealt round-robin to the members.
    pub fn ring(&self) -> Result<crate::core::ring::Ring, crate::core::ring::RingError> {
        let members: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        match &self.owners {
            Some(owners) => crate::core::ring::Ring::from_owners(&members, owners),
            None => crate::core::ring::Ring::new(&members, self.partitions),
        }
    }
}

/// Checks a node name: 1 to 32 of `a-z`, `0-9` and `-`, starting with a letter.
/// Names go into certificates as DNS labels, so they must be valid labels.
pub fn validate_node_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid node name {name:?}: use 1 to 32 of a-z, 0-9 and '-', starting with a letter"
        ))
    }
}

/// How a node commits writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every group commit is fsynced before any of its writes is acknowledged.
    #[default]
    Immediate,
    /// Commits are made visible at once and fsynced every `flush_interval_ms`;
    /// a crash may lose the last interval of this replica's writes (other
    /// replicas still hold them).
    Buffered,
}

/// Storage settings of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `immediate` or `buffered`.
    #[serde(default)]
    pub durability: Durability,
    /// With `buffered`, how often commits are made durable.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

fn default_flush_interval_ms() -> u64 {
    100
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            flush_interval_ms: default_flush_interval_ms(),
        }
    }
}

/// Where a node finds its certificates (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// The cluster CA's certificate.
    pub ca_cert: PathBuf,
    /// This identity's certificate, signed by the CA.
    pub cert: PathBuf,
    /// This identity's private key.
    pub key: PathBuf,
}

/// `node.toml`: how one node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name; must match its certificate and its manifest entry.
    pub name: String,
    /// Address to bind the QUIC endpoint to.
    pub listen: SocketAddr,
    /// Address to serve the HTTPS API on (HTTP.md); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Folder of the redb data file.
    pub data_dir: PathBuf,
    /// Log file; standard error when absent.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// The cluster manifest (static membership).
    pub cluster: PathBuf,
    /// The node's certificates.
    pub tls: TlsPaths,
    /// Storage settings.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Milliseconds a coordinator waits for replicas before giving up.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Threads of the node's async runtime: `0` (the default) one per core,
    /// `1` a single-threaded runtime. The dev cluster uses `1`: five nodes
    /// sharing a laptop's cores spend less on waking each other's idle
    /// threads. The store's writer and reader threads come on top.
    #[serde(default)]
    pub runtime_threads: usize,
    /// Milliseconds a key's tombstone must stay unchanged before the node
    /// collects it (once every member holds it; see `core::tombstone`).
    #[serde(default = "default_tombstone_grace_ms")]
    pub tombstone_grace_ms: u64,
    /// Members to gossip with when this node is not in the manifest and has
    /// not joined yet: it asks them for the cluster state and joins (each
    /// `{ name = "n1", addr = "host:port" }`; the manifest's members when
    /// empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<MemberEntry>,
}

fn default_request_timeout_ms() -> u64 {
    REQUEST_TIMEOUT_MS_DEFAULT
}

fn default_tombstone_grace_ms() -> u64 {
    crate::core::tombstone::TOMBSTONE_GRACE_MS_DEFAULT
}

impl NodeConfig {
    /// Reads a node config and resolves its relative paths against the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = read_toml(path)?;
        validate_node_name(&config.name).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.cluster,
            &mut config.tls.ca_cert,
            &mut config.tls.cert,
            &mut config.tls.key,
        ] {
            *p = resolve(base, p);
        }
        if let Some(log) = &mut config.log_file {
            *log = resolve(base, log);
        }
        Ok(config)
    }

    /// Writes the config as given (paths are not rewritten).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_toml(path, self)
    }

    /// The redb file inside `data_dir`.
    pub fn data_file(&self) -> PathBuf {
        self.data_dir.join("data.redb")
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|span| line_column(&text, span.start));
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: match at {
                Some((line, column)) => format!("line {line}, column {column}: {}", e.message()),
                None => e.message().to_string(),
            },
        }
    })
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), ConfigError> {
    let text = toml::to_string_pretty(value).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // Written aside and renamed over: a reader (a client while `add-node`
    // rewrites the manifest) sees the old file or the new one, never half.
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&aside, text).map_err(io)?;
    std::fs::rename(&aside, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(nodes: usize) -> ClusterManifest {
        ClusterManifest {
            name: "test".into(),
            replicas: 3,
            read_quorum: 2,
            write_quorum: 2,
            partitions: 64,
            value_bytes_max: VALUE_BYTES_MAX_DEFAULT,
            owners: None,
            nodes: (1..=nodes)
                .map(|i| MemberEntry {
                    name: format!("n{i}"),
                    addr: format!("127.0.0.1:{}", 7000 + i).parse().unwrap(),
                    http: None,
                })
                .collect(),
        }
    }

    #[test]
    fn manifest_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        let m = manifest(5);
        m.save(&path).unwrap();
        assert_eq!(ClusterManifest::load(&path).unwrap(), m);
    }

    #[test]
    fn bad_quorums_are_refused() {
        let mut m = manifest(2);
        assert!(m.validate().is_err(), "N=3 on two nodes");
        m = manifest(5);
        m.write_quorum = 4;
        assert!(m.validate().is_err());
        m = manifest(5);
        m.partitions = 48;
        assert!(m.validate().is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        let m = manifest(3);
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // A key nobody reads (a typo of read_quorum) on line 2.
        let typo = text.replacen("replicas = 3\n", "replicas = 3\nread_qourum = 2\n", 1);
        std::fs::write(&path, typo).unwrap();
        let err = ClusterManifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("cluster.toml"), "{err}");
        assert!(err.contains("line 3, column 1"), "{err}");
        assert!(err.contains("unknown field `read_qourum`"), "{err}");
        // A value of the wrong type, in a table further down.
        let bad = text.replacen("addr = \"127.0.0.1:7002\"", "addr = 7002", 1);
        std::fs::write(&path, bad).unwrap();
        let err = ClusterManifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("line") && err.contains("column"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert_eq!(line_column("a\nbc\ndé", 7), (3, 2));
    }

    #[test]
    fn node_names_are_dns_labels() {
        assert!(validate_node_name("n1").is_ok());
        assert!(validate_node_name("web-3").is_ok());
        assert!(validate_node_name("N1").is_err());
        assert!(validate_node_name("1n").is_err());
        assert!(validate_node_name("").is_err());
        assert!(validate_node_name("a.b").is_err());
    }
}
