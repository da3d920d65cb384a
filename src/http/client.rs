//! A small HTTPS client of the API, over one reused HTTP/1.1 connection:
//! the cluster CA as the only root, the client certificate presented. For
//! the end-to-end tests, `dynamo bench --http` and tools; any HTTP client
//! with the same three files does the same (README: curl, Python).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::net::tls::{self, Credentials, TlsError};

/// What went wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TLS configuration could not be built.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// The connection or handshake failed.
    #[error("cannot reach {addr}: {message}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
    /// The request failed on the wire.
    #[error("request failed: {0}")]
    Request(String),
}

/// An answer: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One connection to one node's API, made on first use and again after it
/// broke.
pub struct HttpsClient {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl HttpsClient {
    /// A client of the node `node` at `addr`, presenting `creds`.
    pub fn new(addr: SocketAddr, node: &str, creds: &Credentials) -> Result<Self, HttpError> {
        let config = tls::https_client_config(creds)?;
        let server_name =
            ServerName::try_from(tls::server_name(node)).map_err(|e| HttpError::Connect {
                addr,
                message: format!("bad node name {node}: {e}"),
            })?;
        Ok(Self {
            addr,
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            sender: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let fail = |message: String| HttpError::Connect {
            addr: self.addr,
            message,
        };
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| fail(format!("tls handshake: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, HttpError> {
        let mut slot = self.sender.lock().await;
        let mut sender = match slot.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let (parts, incoming) = response.into_parts();
        let body = incoming
            .collect()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?
            .to_bytes();
        *slot = Some(sender);
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A GET.
    pub async fn get(&self, path: &str) -> Result<Answer, HttpError> {
        self.request(Method::GET, path, &[], Vec::new()).await
    }
}
