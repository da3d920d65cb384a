//! Mutual TLS for every connection: the cluster CA, the certificates it
//! issues, and the rustls/quinn configurations built from them.
//!
//! DESIGN.md §4: there is no plaintext mode. `dynamo up` makes one
//! self-signed CA per cluster ([`ClusterCa`]) and issues one certificate per
//! node and one for the client/operator ([`ClusterCa::issue`]). Who a peer
//! is, is in its certificate, as a DNS subject alternative name:
//! `"{name}.node.dynamo"` for node `name`, `"client.dynamo"` for the client.
//! A node's server accepts a connection only when the peer presents a
//! certificate signed by the cluster CA ([`server_config`]); a caller trusts
//! only that CA and checks the node's name ([`client_config`] with
//! [`server_name`]). After the handshake, [`peer_identity`] turns the
//! verified certificate into an [`Identity`]; what each identity may do is
//! decided above this module.
//!
//! The protocol version is in the ALPN ([`ALPN`]): a peer speaking another
//! version fails the handshake instead of misreading frames. The crypto
//! provider is always *ring*, passed explicitly to every builder; nothing
//! here depends on a process-wide default provider.
//!
//! Certificates are ECDSA P-256 and valid for [`CERT_VALIDITY_DAYS`]; the
//! dev cluster does not rotate them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// ALPN protocol id, carrying the wire protocol version. A peer that offers
/// anything else fails the handshake.
pub const ALPN: &[u8] = b"dynamo/3";

/// DNS suffix of node certificates: node `n3` is `n3.node.dynamo`.
pub const NODE_NAME_SUFFIX: &str = ".node.dynamo";

/// DNS name in the client/operator certificate.
pub const CLIENT_NAME: &str = "client.dynamo";

/// How long the CA and issued certificates are valid, in days (10 years).
pub const CERT_VALIDITY_DAYS: u64 = 3650;

/// Certificates are valid from this long before they were made, so that a
/// peer whose clock is a little behind still accepts them.
pub const CLOCK_SKEW_ALLOWED_SECS: u64 = 24 * 3600;

/// A connection with no traffic is sent a keep-alive this often.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// A connection that hears nothing from its peer for this long is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Ack-eliciting packets a peer may receive before it must acknowledge
/// (QUIC's ACK frequency extension; quinn's default asks for every other).
pub const ACK_ELICITING_THRESHOLD: u32 = 32;

/// The longest a peer may hold back an acknowledgement.
pub const ACK_DELAY_MAX: Duration = Duration::from_millis(10);

/// Bidirectional streams a peer may have open at once on one connection.
pub const BIDI_STREAMS_CONCURRENT_MAX: u32 = 256;

/// Longest node name: one DNS label.
pub const NODE_NAME_BYTES_MAX: usize = 63;

/// Longest cluster name accepted by [`ClusterCa::generate`].
pub const CLUSTER_NAME_BYTES_MAX: usize = 48;

/// Common-name prefix of every dynamo cluster CA.
const CA_COMMON_NAME_PREFIX: &str = "dynamo cluster CA ";

/// Who is at the other end of a connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Identity {
    /// A cluster node, by name (`n3`).
    Node(String),
    /// The client/operator certificate.
    Client,
}

impl Identity {
    /// The DNS name this identity's certificate carries.
    pub fn dns_name(&self) -> String {
        match self {
            Identity::Node(name) => server_name(name),
            Identity::Client => CLIENT_NAME.to_string(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(name) => write!(f, "node {name}"),
            Identity::Client => f.write_str("client"),
        }
    }
}

/// The name a node's certificate is issued for and a caller must ask for
/// when connecting to it: `"{node}.node.dynamo"`.
pub fn server_name(node: &str) -> String {
    format!("{node}{NODE_NAME_SUFFIX}")
}

/// Errors making certificates or TLS configurations. Each names the file
/// or the item at fault; none is retryable: the operator must fix the
/// files or the names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file or PEM string does not hold what it should.
    #[error("{source_name}: {reason}")]
    Pem {
        /// The file path, or what the PEM string was meant to be.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A node or cluster name cannot go into a certificate.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The CA certificate and key do not form a dynamo cluster CA.
    #[error("cluster CA: {0}")]
    Ca(String),
    /// rcgen failed to make a key or certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificates or key for a configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no CA).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// quinn refused the TLS configuration or a transport setting.
    #[error("QUIC configuration refused: {0}")]
    Quic(String),
}

/// A certificate and its private key, both PEM, as issued by
/// [`ClusterCa::issue`].
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM. Write it with mode 0600.
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The cluster's certificate authority: a self-signed ECDSA P-256
/// certificate and its key, both PEM, as written to and read from disk.
///
/// Issuing needs nothing but these two strings: the CA's distinguished
/// name is read back from `cert_pem` and the signing certificate is rebuilt
/// from it and `key_pem`, then checked to match the stored one byte for
/// byte in subject and public key.
#[derive(Clone)]
pub struct ClusterCa {
    /// The CA certificate, PEM (`ca.pem`), handed to every node and client.
    pub cert_pem: String,
    /// The CA private key (PKCS#8), PEM. Write it with mode 0600.
    pub key_pem: String,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Certificate parameters valid from a little before now for
/// [`CERT_VALIDITY_DAYS`]. rcgen's date type is reached through
/// `date_time_ymd` so that this crate does not name `time` itself.
fn dated_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - Duration::from_secs(CLOCK_SKEW_ALLOWED_SECS);
    params.not_after = now + Duration::from_secs(CERT_VALIDITY_DAYS * 24 * 3600);
    params
}

/// The parameters of a cluster CA with the given common name. Everything
/// that goes into the issuer field of issued certificates comes from here,
/// so a CA loaded from disk is rebuilt with the same bytes.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = dated_params();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn check_node_name(name: &str) -> Result<(), TlsError> {
    let refuse = |reason| {
        Err(TlsError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > NODE_NAME_BYTES_MAX {
        return refuse("a node name is 1 to 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return refuse("a node name uses only letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return refuse("a node name neither starts nor ends with '-'");
    }
    Ok(())
}

fn first_cert(pem: &str, source_name: &str) -> Result<CertificateDer<'static>, TlsError> {
    parse_certs(pem.as_bytes(), source_name)?
        .into_iter()
        .next()
        .ok_or_else(|| TlsError::Pem {
            source_name: source_name.to_string(),
            reason: "no certificate found".into(),
        })
}

/// Walks one DER tag-length-value; returns (tag, value, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The UTF-8 common name in the contents of an X.509 `Name`.
fn common_name(name: &[u8]) -> Option<String> {
    const SET: u8 = 0x31;
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const UTF8_STRING: u8 = 0x0c;
    const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, rest) = der_tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let (tag, attr, _) = der_tlv(set)?;
        if tag != SEQUENCE {
            return None;
        }
        let (tag, oid, value) = der_tlv(attr)?;
        if tag == OID && oid == OID_COMMON_NAME {
            let (tag, text, _) = der_tlv(value)?;
            if tag != UTF8_STRING {
                return None;
            }
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

impl ClusterCa {
    /// Makes a new self-signed CA for `cluster_name`.
    pub fn generate(cluster_name: &str) -> Result<Self, TlsError> {
        if cluster_name.is_empty()
            || cluster_name.len() > CLUSTER_NAME_BYTES_MAX
            || cluster_name.chars().any(char::is_control)
        {
            return Err(TlsError::InvalidName {
                name: cluster_name.to_string(),
                reason: "a cluster name is 1 to 48 bytes without control characters",
            });
        }
        let key = KeyPair::generate()?;
        let cert =
            ca_params(&format!("{CA_COMMON_NAME_PREFIX}{cluster_name}")).self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Rebuilds the signing certificate from the PEM strings and checks it
    /// is the CA they describe.
    fn signer(&self) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
        let stored_der = first_cert(&self.cert_pem, "CA certificate")?;
        let stored = webpki::EndEntityCert::try_from(&stored_der)
            .map_err(|e| TlsError::Ca(format!("cannot parse the CA certificate: {e}")))?;
        let common_name = common_name(stored.subject())
            .filter(|cn| cn.starts_with(CA_COMMON_NAME_PREFIX))
            .ok_or_else(|| TlsError::Ca("the certificate is not a dynamo cluster CA".into()))?;
        let key = KeyPair::from_pem(&self.key_pem).map_err(|e| TlsError::Pem {
            source_name: "CA key".into(),
            reason: e.to_string(),
        })?;
        let rebuilt = ca_params(&common_name).self_signed(&key)?;
        let rebuilt_parsed = webpki::EndEntityCert::try_from(rebuilt.der())
            .map_err(|e| TlsError::Ca(format!("rebuilt CA does not parse: {e}")))?;
        if rebuilt_parsed.subject() != stored.subject() {
            return Err(TlsError::Ca(
                "the CA certificate's subject cannot be reproduced".into(),
            ));
        }
        if rebuilt_parsed.subject_public_key_info() != stored.subject_public_key_info() {
            return Err(TlsError::Ca(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        Ok((rebuilt, key))
    }

    /// Issues a certificate for `identity`, signed by this CA: a fresh
    /// P-256 key, the identity's DNS name as SAN, CN the node name or
    /// `client`. Node certificates serve and call (server and client
    /// auth); the client certificate only calls.
    pub fn issue(&self, identity: &Identity) -> Result<IssuedCert, TlsError> {
        self.issue_with(identity, dated_params())
    }

    /// Issues a node's certificate that also names the IP addresses it
    /// serves on and `localhost`, so an HTTPS client such as curl that
    /// checks the host it dialled (`https://127.0.0.1:PORT`) accepts it.
    /// Identities are read from the node's DNS name only.
    pub fn issue_for_hosts(
        &self,
        identity: &Identity,
        hosts: &[std::net::IpAddr],
    ) -> Result<IssuedCert, TlsError> {
        let mut params = dated_params();
        params.subject_alt_names = hosts
            .iter()
            .map(|ip| rcgen::SanType::IpAddress(*ip))
            .collect();
        params
            .subject_alt_names
            .push(rcgen::SanType::DnsName("localhost".try_into()?));
        self.issue_with(identity, params)
    }

    /// Issues a certificate for `identity` valid only from `not_before` to
    /// `not_after` (seconds since the Unix epoch): for tests and tooling
    /// that need an expired or a not-yet-valid certificate of this CA.
    pub fn issue_valid_between(
        &self,
        identity: &Identity,
        not_before: u64,
        not_after: u64,
    ) -> Result<IssuedCert, TlsError> {
        let mut params = CertificateParams::default();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(not_before);
        params.not_after = epoch + Duration::from_secs(not_after);
        self.issue_with(identity, params)
    }

    fn issue_with(
        &self,
        identity: &Identity,
        mut params: CertificateParams,
    ) -> Result<IssuedCert, TlsError> {
        let (ca_cert, ca_key) = self.signer()?;
        let common = match identity {
            Identity::Node(name) => {
                check_node_name(name)?;
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                name.clone()
            }
            Identity::Client => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                "client".to_string()
            }
        };
        let san = identity.dns_name();
        params
            .subject_alt_names
            .insert(0, rcgen::SanType::DnsName(san.try_into()?));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn parse_certs(pem: &[u8], source_name: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut reader = pem;
    rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            source_name: source_name.to_string(),
            reason: format!("bad PEM: {e}"),
        })
}

/// What a node or client presents and trusts: the cluster CA, its own
/// certificate chain and private key, parsed and ready for rustls.
pub struct Credentials {
    ca: Vec<CertificateDer<'static>>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("ca_certs", &self.ca.len())
            .field("chain_certs", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Reads the CA certificate(s), our certificate chain and our private
    /// key from PEM files. Errors name the file at fault.
    pub fn load(ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let (ca, cert, key) = (read(ca_path)?, read(cert_path)?, read(key_path)?);
        Self::parse(
            (&ca, &ca_path.display().to_string()),
            (&cert, &cert_path.display().to_string()),
            (&key, &key_path.display().to_string()),
        )
    }

    /// Builds credentials from PEM strings (CA certificate(s), our
    /// certificate chain, our private key).
    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Result<Self, TlsError> {
        Self::parse(
            (ca.as_bytes(), "CA certificate"),
            (cert.as_bytes(), "certificate"),
            (key.as_bytes(), "private key"),
        )
    }

    fn parse(
        (ca, ca_name): (&[u8], &str),
        (cert, cert_name): (&[u8], &str),
        (key, key_name): (&[u8], &str),
    ) -> Result<Self, TlsError> {
        let missing = |source_name: &str, what: &str| TlsError::Pem {
            source_name: source_name.to_string(),
            reason: format!("no {what} found"),
        };
        let ca_certs = parse_certs(ca, ca_name)?;
        if ca_certs.is_empty() {
            return Err(missing(ca_name, "certificate"));
        }
        let cert_chain = parse_certs(cert, cert_name)?;
        if cert_chain.is_empty() {
            return Err(missing(cert_name, "certificate"));
        }
        let mut reader = key;
        let key = rustls_pemfile::private_key(&mut reader)
            .map_err(|e| TlsError::Pem {
                source_name: key_name.to_string(),
                reason: format!("bad PEM: {e}"),
            })?
            .ok_or_else(|| missing(key_name, "private key"))?;
        Ok(Self {
            ca: ca_certs,
            cert_chain,
            key,
        })
    }

    /// The identity our certificate names, checked now against our own CA
    /// (chain, validity dates, key usage). A node runs only under the name
    /// its certificate carries; this is where it finds out.
    pub fn own_identity(&self) -> Result<Identity, TlsError> {
        let cert = self.cert_chain.first().ok_or_else(|| TlsError::Pem {
            source_name: "certificate".into(),
            reason: "no certificate found".into(),
        })?;
        let identity = identity_of_cert(cert).ok_or_else(|| {
            TlsError::Ca("the certificate names no dynamo node and is not the client's".into())
        })?;
        verify_cert_der(&self.ca, cert, &identity, UnixTime::now())?;
        Ok(identity)
    }

    /// Our certificate (DER), to send beside what we sign.
    pub fn cert_der(&self) -> &[u8] {
        self.cert_chain.first().map_or(&[][..], |c| c.as_ref())
    }

    /// Signs `message` with our private key (ECDSA P-256 with SHA-256,
    /// ASN.1), for statements others relay: a gossiped member entry is
    /// signed by the node that made it ([`Credentials::verify_signed`]).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlsError> {
        let key = provider()
            .key_provider
            .load_private_key(self.key.clone_key())?;
        let signer = key
            .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
            .ok_or_else(|| TlsError::Ca("the key cannot sign with ECDSA P-256".into()))?;
        Ok(signer.sign(message)?)
    }

    /// Checks that `signature` over `message` was made by node `signer`:
    /// `cert` must be `signer`'s node certificate from our CA, valid now,
    /// and the signature must verify with its key.
    pub fn verify_signed(
        &self,
        signer: &str,
        cert: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TlsError> {
        let der = CertificateDer::from(cert.to_vec());
        verify_cert_der(
            &self.ca,
            &der,
            &Identity::Node(signer.to_string()),
            UnixTime::now(),
        )?;
        let end = webpki::EndEntityCert::try_from(&der).map_err(|e| TlsError::Pem {
            source_name: "signer's certificate".into(),
            reason: format!("does not parse: {e}"),
        })?;
        end.verify_signature(webpki::ring::ECDSA_P256_SHA256, message, signature)
            .map_err(|e| TlsError::Ca(format!("the signature does not verify: {e}")))
    }

    fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in &self.ca {
            roots.add(ca.clone())?;
        }
        Ok(roots)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport_config() -> Result<quinn::TransportConfig, TlsError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(IDLE_TIMEOUT)
        .map_err(|e| TlsError::Quic(format!("idle timeout: {e}")))?;
    transport
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(BIDI_STREAMS_CONCURRENT_MAX))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    // Ask the peer to acknowledge every ACK_ELICITING_THRESHOLD packets (or
    // after ACK_DELAY_MAX) instead of every other one: requests and answers
    // carry the acknowledgements anyway, and ACK-only packets were a fifth
    // of the datagrams under load (6.27 -> 5.04 per operation, `dynamo bench`).
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(quinn::VarInt::from_u32(ACK_ELICITING_THRESHOLD))
        .max_ack_delay(Some(ACK_DELAY_MAX));
    transport.ack_frequency_config(Some(ack));
    Ok(transport)
}

/// The rustls side of [`server_config`]: TLS 1.3, ring, client certificate
/// required and verified against the cluster CA, our ALPN only.
fn server_tls(creds: &Credentials) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(creds.roots()?),
        provider.clone(),
    )
    .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(creds.cert_chain.clone(), creds.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// The rustls side of [`client_config`]: TLS 1.3, ring, trusts only the
/// cluster CA, presents our certificate, our ALPN only.
fn client_tls(creds: &Credentials) -> Result<rustls::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(creds.roots()?)
        .with_client_auth_cert(creds.cert_chain.clone(), creds.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// ALPN ids the HTTPS API speaks (HTTP.md: HTTP/2 and HTTP/1.1).
pub const HTTPS_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The rustls configuration of a node's HTTPS API: the node's certificate,
/// TLS 1.2 or 1.3, and a client certificate required, chained to the
/// cluster CA and naming the client identity: no certificate, another
/// CA's, or a node's is refused in the handshake, before any request is
/// read.
pub fn https_server_config(creds: &Credentials) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let webpki = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(creds.roots()?),
        provider.clone(),
    )
    .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(ClientsOnly(webpki)))
        .with_single_cert(creds.cert_chain.clone(), creds.key.clone_key())?;
    tls.alpn_protocols = HTTPS_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(tls)
}

/// An HTTPS client configuration: trusts only the cluster CA and presents
/// `creds` (for tests, `dynamo bench --http` and tools); HTTP/1.1.
pub fn https_client_config(creds: &Credentials) -> Result<rustls::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(creds.roots()?)
        .with_client_auth_cert(creds.cert_chain.clone(), creds.key.clone_key())?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// The cluster CA's client verification, and then the identity: only the
/// client certificate may use the HTTPS API.
#[derive(Debug)]
struct ClientsOnly(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl rustls::server::danger::ClientCertVerifier for ClientsOnly {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        match identity_of_cert(end_entity) {
            Some(Identity::Client) => Ok(verified),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A quinn server configuration for a node: mutual TLS against the cluster
/// CA, [`ALPN`], TLS 1.3 only, keep-alive every [`KEEP_ALIVE_INTERVAL`],
/// idle timeout [`IDLE_TIMEOUT`], at most [`BIDI_STREAMS_CONCURRENT_MAX`]
/// bidirectional streams per connection and no unidirectional ones.
pub fn server_config(creds: &Credentials) -> Result<quinn::ServerConfig, TlsError> {
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(server_tls(creds)?)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()?));
    Ok(config)
}

/// A quinn client configuration: trusts only the cluster CA, presents our
/// certificate, [`ALPN`], TLS 1.3, same keep-alive and idle timeout as the
/// server. The caller names the node it expects with [`server_name`].
pub fn client_config(creds: &Credentials) -> Result<quinn::ClientConfig, TlsError> {
    client_config_from(client_tls(creds)?)
}

fn client_config_from(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TlsError> {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()?));
    Ok(config)
}

/// Who the peer of an established connection is.
///
/// Reads the peer's end-entity certificate (already verified against the
/// cluster CA by the handshake: servers require client certificates,
/// clients verify the server's), collects the identities its DNS names
/// claim (`client.dynamo`, or `{name}.node.dynamo` with a valid node
/// name), and confirms each with webpki's own name check. The name is read
/// from the certificate, so no list of members is needed. Returns `None`
/// when there is no certificate, it does not parse, or it claims no
/// identity or more than one: such a peer must be refused.
pub fn peer_identity(conn: &quinn::Connection) -> Option<Identity> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    identity_of_cert(certs.first()?)
}

/// The one identity a (verified) certificate claims, if any.
fn identity_of_cert(der: &CertificateDer<'_>) -> Option<Identity> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    let mut found: Option<Identity> = None;
    for dns in cert.valid_dns_names() {
        let claimed = if dns.eq_ignore_ascii_case(CLIENT_NAME) {
            Identity::Client
        } else {
            let lower = dns.to_ascii_lowercase();
            let Some(name) = lower.strip_suffix(NODE_NAME_SUFFIX) else {
                continue;
            };
            if check_node_name(name).is_err() {
                continue;
            }
            Identity::Node(name.to_string())
        };
        let subject = ServerName::try_from(claimed.dns_name()).ok()?;
        if cert.verify_is_valid_for_subject_name(&subject).is_err() {
            continue;
        }
        match &found {
            None => found = Some(claimed),
            Some(already) if *already == claimed => {}
            Some(_) => return None,
        }
    }
    found
}

/// Checks, now, that `cert_pem` chains to the CA in `ca_pem` and is the
/// certificate of `identity` (node certificates for server use, the client
/// certificate for client use). For tooling that checks files before
/// starting a node, and for tests.
pub fn verify_issued(ca_pem: &str, cert_pem: &str, identity: &Identity) -> Result<(), TlsError> {
    let ca = first_cert(ca_pem, "CA certificate")?;
    let cert = first_cert(cert_pem, "certificate")?;
    verify_cert_der(&[ca], &cert, identity, UnixTime::now())
}

/// [`verify_issued`] on DER certificates, at time `now`.
fn verify_cert_der(
    cas: &[CertificateDer<'static>],
    cert: &CertificateDer<'_>,
    identity: &Identity,
    now: UnixTime,
) -> Result<(), TlsError> {
    let anchors = cas
        .iter()
        .map(|ca| {
            webpki::anchor_from_trusted_cert(ca)
                .map_err(|e| TlsError::Ca(format!("CA certificate unusable as trust anchor: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let end = webpki::EndEntityCert::try_from(cert).map_err(|e| TlsError::Pem {
        source_name: "certificate".into(),
        reason: format!("does not parse: {e}"),
    })?;
    if identity_of_cert(cert).as_ref() != Some(identity) {
        return Err(TlsError::Ca(format!("certificate is not the {identity}'s")));
    }
    let usage = match identity {
        Identity::Node(_) => webpki::KeyUsage::server_auth(),
        Identity::Client => webpki::KeyUsage::client_auth(),
    };
    end.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        now,
        usage,
        None,
        None,
    )
    .map_err(|e| TlsError::Ca(format!("certificate does not verify against the CA: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn creds(ca: &ClusterCa, identity: &Identity) -> Result<Credentials, TlsError> {
        let issued = ca.issue(identity)?;
        Credentials::from_pem(&ca.cert_pem, &issued.cert_pem, &issued.key_pem)
    }

    fn server(creds: &Credentials) -> Result<quinn::Endpoint, Box<dyn std::error::Error>> {
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Ok(quinn::Endpoint::server(server_config(creds)?, bind)?)
    }

    fn client_endpoint() -> std::io::Result<quinn::Endpoint> {
        quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Connects `client` to `server` as `n1`; returns the server side's
    /// outcome and the client side's connection (if its handshake ended).
    async fn handshake(
        server: &quinn::Endpoint,
        client: quinn::ClientConfig,
    ) -> Result<
        (
            Result<quinn::Connection, quinn::ConnectionError>,
            Result<quinn::Connection, quinn::ConnectionError>,
        ),
        Box<dyn std::error::Error>,
    > {
        let addr = server.local_addr()?;
        let client_ep = client_endpoint()?;
        let connecting = client_ep.connect_with(client, addr, &server_name("n1"))?;
        let accept = async {
            let incoming = server.accept().await.ok_or("server endpoint closed")?;
            Ok::<_, Box<dyn std::error::Error>>(incoming.await)
        };
        let (client_side, server_side) = tokio::join!(connecting, accept);
        Ok((server_side?, client_side))
    }

    #[test]
    fn issued_certificates_verify_against_the_ca_loaded_from_pem() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        // Round trip through the strings that go to disk.
        let loaded = ClusterCa {
            cert_pem: ca.cert_pem.clone(),
            key_pem: ca.key_pem.clone(),
        };
        let node = loaded.issue(&Identity::Node("n3".into()))?;
        let client = loaded.issue(&Identity::Client)?;
        verify_issued(&ca.cert_pem, &node.cert_pem, &Identity::Node("n3".into()))?;
        verify_issued(&ca.cert_pem, &client.cert_pem, &Identity::Client)?;
        // Wrong identity, wrong CA.
        assert!(verify_issued(&ca.cert_pem, &node.cert_pem, &Identity::Client).is_err());
        let other = ClusterCa::generate("other")?;
        assert!(verify_issued(
            &other.cert_pem,
            &node.cert_pem,
            &Identity::Node("n3".into())
        )
        .is_err());
        Ok(())
    }

    #[test]
    fn a_signature_names_its_node_and_nothing_else() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let n2 = creds(&ca, &Identity::Node("n2".into()))?;
        let n3 = creds(&ca, &Identity::Node("n3".into()))?;
        let sig = n2.sign(b"n2 is up")?;
        n3.verify_signed("n2", n2.cert_der(), b"n2 is up", &sig)?;
        // Another message, another claimed signer, another certificate.
        assert!(n3
            .verify_signed("n2", n2.cert_der(), b"n2 is down", &sig)
            .is_err());
        assert!(n3
            .verify_signed("n9", n2.cert_der(), b"n2 is up", &sig)
            .is_err());
        assert!(n3
            .verify_signed("n2", n3.cert_der(), b"n2 is up", &sig)
            .is_err());
        // A node of another cluster signs nothing here.
        let other = ClusterCa::generate("other")?;
        let stranger = creds(&other, &Identity::Node("n2".into()))?;
        let forged = stranger.sign(b"n2 is up")?;
        assert!(n3
            .verify_signed("n2", stranger.cert_der(), b"n2 is up", &forged)
            .is_err());
        // Our own certificate names us.
        assert_eq!(n2.own_identity()?, Identity::Node("n2".into()));
        Ok(())
    }

    #[test]
    fn certificates_name_their_identity() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        for identity in [Identity::Node("n3".into()), Identity::Client] {
            let issued = ca.issue(&identity)?;
            let der = first_cert(&issued.cert_pem, "test")?;
            assert_eq!(identity_of_cert(&der), Some(identity));
        }
        // The CA itself is nobody.
        assert_eq!(identity_of_cert(&first_cert(&ca.cert_pem, "ca")?), None);
        Ok(())
    }

    #[test]
    fn mismatched_or_foreign_ca_material_is_refused() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let other = ClusterCa::generate("other")?;
        let mixed = ClusterCa {
            cert_pem: ca.cert_pem.clone(),
            key_pem: other.key_pem.clone(),
        };
        assert!(matches!(
            mixed.issue(&Identity::Client),
            Err(TlsError::Ca(_))
        ));
        let issued = ca.issue(&Identity::Client)?;
        let not_a_ca = ClusterCa {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        };
        assert!(matches!(
            not_a_ca.issue(&Identity::Client),
            Err(TlsError::Ca(_))
        ));
        for bad in ["", "n.3", "-n3", "n 3", &"n".repeat(64)] {
            assert!(matches!(
                ca.issue(&Identity::Node(bad.to_string())),
                Err(TlsError::InvalidName { .. })
            ));
        }
        Ok(())
    }

    #[test]
    fn load_names_the_file_at_fault() -> TestResult {
        let dir = tempfile::tempdir()?;
        let ca = ClusterCa::generate("test")?;
        let issued = ca.issue(&Identity::Client)?;
        let (ca_path, cert_path, key_path) = (
            dir.path().join("ca.pem"),
            dir.path().join("client.pem"),
            dir.path().join("client.key"),
        );
        std::fs::write(&ca_path, &ca.cert_pem)?;
        std::fs::write(&cert_path, &issued.cert_pem)?;
        std::fs::write(&key_path, &issued.key_pem)?;
        Credentials::load(&ca_path, &cert_path, &key_path)?;

        let missing = dir.path().join("missing.pem");
        let err = Credentials::load(&ca_path, &missing, &key_path)
            .err()
            .ok_or("loaded")?;
        assert!(err.to_string().contains("missing.pem"), "{err}");
        // A certificate where the key should be.
        let err = Credentials::load(&ca_path, &cert_path, &cert_path)
            .err()
            .ok_or("loaded")?;
        assert!(
            err.to_string().contains("client.pem") && err.to_string().contains("private key"),
            "{err}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn our_client_connects_and_is_identified() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server_ep = server(&creds(&ca, &Identity::Node("n1".into()))?)?;
        let client = client_config(&creds(&ca, &Identity::Client)?)?;
        let (server_side, client_side) = handshake(&server_ep, client).await?;
        let (server_conn, client_conn) = (server_side?, client_side?);
        assert_eq!(peer_identity(&server_conn), Some(Identity::Client));
        assert_eq!(
            peer_identity(&client_conn),
            Some(Identity::Node("n1".into()))
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_node_is_identified_by_name() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server_ep = server(&creds(&ca, &Identity::Node("n1".into()))?)?;
        let client = client_config(&creds(&ca, &Identity::Node("n3".into()))?)?;
        let (server_side, _client_side) = handshake(&server_ep, client).await?;
        assert_eq!(
            peer_identity(&server_side?),
            Some(Identity::Node("n3".into()))
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_client_of_another_ca_is_refused_at_the_handshake() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let other = ClusterCa::generate("other")?;
        let server_ep = server(&creds(&ca, &Identity::Node("n1".into()))?)?;
        // Trusts our CA (so it accepts the server) but presents a
        // certificate of another CA.
        let foreign = other.issue(&Identity::Client)?;
        let creds = Credentials::from_pem(&ca.cert_pem, &foreign.cert_pem, &foreign.key_pem)?;
        let (server_side, client_side) = handshake(&server_ep, client_config(&creds)?).await?;
        assert!(
            server_side.is_err(),
            "server accepted a foreign certificate"
        );
        // The client learns it as a TLS alert, during or right after its
        // side of the handshake.
        let reason = match client_side {
            Err(err) => err,
            Ok(conn) => conn.closed().await,
        };
        let code = match &reason {
            quinn::ConnectionError::ConnectionClosed(close) => u64::from(close.error_code),
            other => return Err(format!("unexpected close: {other}").into()),
        };
        assert!((0x100..0x200).contains(&code), "not a TLS alert: {reason}");
        Ok(())
    }

    #[tokio::test]
    async fn a_server_of_another_ca_is_refused_by_the_client() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let other = ClusterCa::generate("other")?;
        let server_ep = server(&creds(&other, &Identity::Node("n1".into()))?)?;
        let client = client_config(&creds(&ca, &Identity::Client)?)?;
        let (_server_side, client_side) = handshake(&server_ep, client).await?;
        assert!(client_side.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn another_protocol_version_fails_the_handshake() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server_ep = server(&creds(&ca, &Identity::Node("n1".into()))?)?;
        let mut tls = client_tls(&creds(&ca, &Identity::Client)?)?;
        tls.alpn_protocols = vec![b"dynamo/0".to_vec()];
        let (server_side, client_side) = handshake(&server_ep, client_config_from(tls)?).await?;
        assert!(server_side.is_err());
        assert!(client_side.is_err());
        Ok(())
    }
}
