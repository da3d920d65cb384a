//! The routes of `HTTP.md`: each request becomes the
//! [`Request`] a QUIC client would send (keys, buckets, listing) or a
//! document of the node ([`Backend::status`], [`Backend::ring`],
//! [`Backend::metrics`]), and each answer becomes a status code, headers
//! and a body. Errors are always `{"error": "one sentence", "kind": "..."}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Backend, REQUEST_TIMEOUT};
use crate::core::clock::{decode_token, encode_token, Object, VersionVector};
use crate::core::key::ObjectKey;
use crate::core::message::{
    BucketView, ErrorKind, ErrorReply, PutRequest, Request, Response, KEYS_PAGE_MAX,
};
use crate::report::{shown_siblings, sibling_json, GetJson};

/// The header that carries a context token both ways.
pub const CONTEXT_HEADER: &str = "x-dynamo-context";
/// Keys per listing page when `limit` is not given.
pub const KEYS_PAGE_DEFAULT: u32 = 1000;
/// Most bytes of a bucket-properties body.
const PROPS_BODY_MAX: usize = 4096;

/// An HTTP answer.
pub type HttpResponse = hyper::Response<Full<Bytes>>;

/// An API error: the status, the body's kind and sentence, and for a quorum
/// not reached how many answered and how many were needed.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    quorum: Option<(u8, u8)>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            quorum: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    fn from_reply(e: ErrorReply) -> Self {
        let (status, kind) = match e.kind {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_input"),
            ErrorKind::Unavailable | ErrorKind::CannotReach => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
        };
        let quorum = (status == StatusCode::SERVICE_UNAVAILABLE && e.needed > 0)
            .then_some((e.acks, e.needed));
        Self {
            status,
            kind,
            message: e.message,
            quorum,
        }
    }

    fn unexpected(other: &Response) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the node gave an unexpected answer: {}", variant(other)),
        )
    }

    fn into_response(self) -> HttpResponse {
        let mut body = json!({"error": self.message, "kind": self.kind});
        if let Some((acks, needed)) = self.quorum {
            body["acks"] = json!(acks);
            body["needed"] = json!(needed);
        }
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The variant name of an answer, for an error sentence.
fn variant(response: &Response) -> String {
    let text = format!("{response:?}");
    text.split(['(', ' ', '{'])
        .next()
        .unwrap_or("?")
        .to_string()
}

fn json_response(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = hyper::Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn empty(status: StatusCode) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn with_context(mut response: HttpResponse, token: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(token) {
        response.headers_mut().insert(CONTEXT_HEADER, value);
    }
    response
}

/// What the route table found.
enum Route {
    Buckets,
    Props(String),
    Keys(String),
    Key(String, Vec<u8>),
    Status,
    Ring,
    Metrics,
}

/// Splits the path into percent-decoded segments and finds the route.
fn route(path: &str) -> Option<Route> {
    let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let text = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let bytes = |s: &str| percent_decode_str(s).collect::<Vec<u8>>();
    Some(match raw.as_slice() {
        ["buckets"] | ["buckets", ""] => Route::Buckets,
        ["buckets", b, "props"] => Route::Props(text(b)?),
        ["buckets", b, "keys"] => Route::Keys(text(b)?),
        ["buckets", b, "keys", k] => Route::Key(text(b)?, bytes(k)),
        ["status"] => Route::Status,
        ["ring"] => Route::Ring,
        ["metrics"] => Route::Metrics,
        _ => return None,
    })
}

/// The query's parameters, percent-decoded (`+` is a space).
fn query(uri: &hyper::Uri) -> Vec<(String, Vec<u8>)> {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).collect::<Vec<u8>>();
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (String::from_utf8_lossy(&decode(k)).into_owned(), decode(v))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

/// A small number parameter (`r=`, `w=`, `limit=`).
fn number(params: &[(String, Vec<u8>)], name: &str, max: u32) -> Result<Option<u32>, ApiError> {
    let Some(raw) = param(params, name) else {
        return Ok(None);
    };
    let bad = || ApiError::bad(format!("{name} must be a whole number from 1 to {max}"));
    let text = std::str::from_utf8(raw).map_err(|_| bad())?;
    match text.parse::<u32>() {
        Ok(v) if (1..=max).contains(&v) => Ok(Some(v)),
        _ => Err(bad()),
    }
}

/// Answers one request, within [`REQUEST_TIMEOUT`].
pub async fn handle<B: Backend>(backend: &B, request: hyper::Request<Incoming>) -> HttpResponse {
    let found = route(request.uri().path());
    let op = op_name(request.method(), found.as_ref());
    let answered = tokio::time::timeout(REQUEST_TIMEOUT, answer(backend, found, request)).await;
    let response = match answered {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "the request took longer than {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    };
    let outcome = match response.status() {
        StatusCode::MULTIPLE_CHOICES => "siblings",
        s if s.is_success() => "ok",
        StatusCode::NOT_FOUND if op == "get" => "not_found",
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::CONFLICT
        | StatusCode::NOT_FOUND
        | StatusCode::METHOD_NOT_ALLOWED => "bad_request",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    };
    backend.observe(op, outcome);
    response
}

/// The metrics name of a request's operation.
fn op_name(method: &Method, found: Option<&Route>) -> &'static str {
    match (method, found) {
        (&Method::GET, Some(Route::Key(..))) => "get",
        (&Method::PUT, Some(Route::Key(..))) => "put",
        (&Method::DELETE, Some(Route::Key(..))) => "delete",
        (_, Some(Route::Key(..))) => "key",
        (_, Some(Route::Keys(_))) => "list",
        (_, Some(Route::Buckets | Route::Props(_))) => "buckets",
        (_, Some(Route::Status)) => "status",
        (_, Some(Route::Ring)) => "ring",
        (_, Some(Route::Metrics)) => "metrics",
        (_, None) => "unknown",
    }
}

/// The answer to a request for the route `found`.
async fn answer<B: Backend>(
    backend: &B,
    found: Option<Route>,
    request: hyper::Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let (parts, body) = request.into_parts();
    let Some(found) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route {} {}; see HTTP.md",
                parts.method,
                parts.uri.path()
            ),
        ));
    };
    let params = query(&parts.uri);
    let method = parts.method.clone();
    let not_allowed = || {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not served at {}", method, parts.uri.path()),
        )
    };
    let wants_json = parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let context = parts
        .headers
        .get(CONTEXT_HEADER)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::bad("the X-Dynamo-Context header is not a context token"))?;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (found, parts.method.clone()) {
        (Route::Key(bucket, key), Method::GET) => {
            let key = object_key(&bucket, &key)?;
            let r = number(&params, "r", u32::from(u8::MAX))?.map(|v| v as u8);
            get(backend, key, r, wants_json).await
        }
        (Route::Key(bucket, key), m @ (Method::PUT | Method::DELETE)) => {
            let key = object_key(&bucket, &key)?;
            let w = number(&params, "w", u32::from(u8::MAX))?.map(|v| v as u8);
            let context = match context {
                Some(token) => decode_token(&token, backend.cluster_tag())
                    .map_err(|e| ApiError::bad(e.to_string()))?,
                None => VersionVector::new(),
            };
            let value = match m {
                Method::PUT => {
                    let max = backend.value_bytes_max();
                    Some(read_body(body, declared, max, "value").await?)
                }
                _ => None,
            };
            Ok(put(backend, key, context, value, w).await?)
        }
        (Route::Keys(bucket), Method::GET) => {
            let limit = number(&params, "limit", KEYS_PAGE_MAX)?.unwrap_or(KEYS_PAGE_DEFAULT);
            let after = param(&params, "after")
                .filter(|a| !a.is_empty())
                .map(<[u8]>::to_vec);
            Ok(list(backend, bucket, after, limit).await?)
        }
        (Route::Buckets, Method::GET) => {
            let buckets = buckets(backend).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "buckets": buckets }),
            ))
        }
        (Route::Props(bucket), Method::GET) => {
            ObjectKey::new(&bucket, b"-").map_err(|e| ApiError::bad(e.to_string()))?;
            let props = BucketView::of(&buckets(backend).await?, &bucket);
            Ok(json_response(StatusCode::OK, &props))
        }
        (Route::Props(bucket), Method::PUT) => {
            let body = read_body(body, declared, PROPS_BODY_MAX, "properties body").await?;
            Ok(set_props(backend, bucket, &body).await?)
        }
        (Route::Status, Method::GET) => Ok(json_response(StatusCode::OK, &backend.status().await)),
        (Route::Ring, Method::GET) => match backend.ring() {
            Some(ring) => Ok(json_response(StatusCode::OK, &ring)),
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "this node has no ring yet",
            )),
        },
        (Route::Metrics, Method::GET) => {
            let mut response =
                hyper::Response::new(Full::new(Bytes::from(backend.metrics().await)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(response)
        }
        _ => Err(not_allowed()),
    }
}

fn object_key(bucket: &str, key: &[u8]) -> Result<ObjectKey, ApiError> {
    ObjectKey::new(bucket, key).map_err(|e| ApiError::bad(e.to_string()))
}

/// Reads a body of at most `max` bytes: `413` past it.
async fn read_body(
    body: Incoming,
    declared: Option<u64>,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    let too_large = |len: Option<u64>| {
        let size = len.map_or_else(|| "larger".to_string(), |l| format!("{l} bytes"));
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the {what} is {size}; this cluster accepts at most {max} bytes"),
        )
    };
    if let Some(len) = declared.filter(|l| *l > max as u64) {
        // Read and drop a body not far over the limit, so the client gets
        // the 413 instead of a connection reset mid-upload.
        if len <= DRAIN_BYTES_MAX as u64 {
            let _ = Limited::new(body, DRAIN_BYTES_MAX).collect().await;
        }
        return Err(too_large(Some(len)));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(None)),
        Err(e) => Err(ApiError::bad(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

/// The most of an oversized body read (and dropped) before the `413`.
const DRAIN_BYTES_MAX: usize = 8 * 1024 * 1024;

async fn get<B: Backend>(
    backend: &B,
    key: ObjectKey,
    r: Option<u8>,
    wants_json: bool,
) -> Result<HttpResponse, ApiError> {
    let request = Request::Get {
        key: key.clone(),
        r,
        last_resort: false,
    };
    let object = match backend.call(request).await {
        Response::Object(object) => object,
        Response::Error(e) => return Err(ApiError::from_reply(e)),
        other => return Err(ApiError::unexpected(&other)),
    };
    let token = encode_token(object.context(), backend.cluster_tag());
    let shown = shown_siblings(&object);
    let doc = || GetJson {
        bucket: key.bucket.clone(),
        key: key.display_key(),
        context: token.clone(),
        siblings: shown.iter().map(|s| sibling_json(s)).collect(),
    };
    let response = match (shown.as_slice(), wants_json) {
        ([], true) => json_response(StatusCode::NOT_FOUND, &doc()),
        ([], false) => not_found(&key, &object),
        (_, true) => json_response(StatusCode::OK, &doc()),
        ([one], false) => {
            let bytes = one.value.clone().unwrap_or_default();
            let mut response = hyper::Response::new(Full::new(Bytes::from(bytes)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        (_, false) => json_response(StatusCode::MULTIPLE_CHOICES, &doc()),
    };
    // A missing key with no tombstone known has no context worth sending.
    Ok(match object.context().is_empty() {
        true => response,
        false => with_context(response, &token),
    })
}

fn not_found(key: &ObjectKey, object: &Object) -> HttpResponse {
    let why = if object.context().is_empty() {
        format!(
            "key {:?} not found in bucket {}",
            key.display_key(),
            key.bucket
        )
    } else {
        format!(
            "key {:?} in bucket {} is deleted",
            key.display_key(),
            key.bucket
        )
    };
    ApiError::new(StatusCode::NOT_FOUND, "not_found", why).into_response()
}

async fn put<B: Backend>(
    backend: &B,
    key: ObjectKey,
    context: VersionVector,
    value: Option<Vec<u8>>,
    w: Option<u8>,
) -> Result<HttpResponse, ApiError> {
    let request = Request::Put(PutRequest {
        key,
        context,
        value,
        w,
        write_id: Some(crate::client::new_write_id()),
        last_resort: false,
    });
    match backend.call(request).await {
        Response::Written { context } => {
            let token = encode_token(&context, backend.cluster_tag());
            Ok(with_context(empty(StatusCode::NO_CONTENT), &token))
        }
        Response::Error(e) => Err(ApiError::from_reply(e)),
        other => Err(ApiError::unexpected(&other)),
    }
}

/// One listing page: `{"keys": [...], "next": KEY or null}`.
#[derive(Serialize)]
struct KeysJson {
    keys: Vec<String>,
    next: Option<String>,
}

async fn list<B: Backend>(
    backend: &B,
    bucket: String,
    after: Option<Vec<u8>>,
    limit: u32,
) -> Result<HttpResponse, ApiError> {
    ObjectKey::new(&bucket, b"-").map_err(|e| ApiError::bad(e.to_string()))?;
    let request = Request::Keys {
        bucket,
        after,
        limit,
    };
    match backend.call(request).await {
        Response::Keys { keys, next } => {
            let text = |k: Vec<u8>| String::from_utf8_lossy(&k).into_owned();
            let doc = KeysJson {
                keys: keys.into_iter().map(text).collect(),
                next: next.map(text),
            };
            Ok(json_response(StatusCode::OK, &doc))
        }
        Response::Error(e) => Err(ApiError::from_reply(e)),
        other => Err(ApiError::unexpected(&other)),
    }
}

async fn buckets<B: Backend>(backend: &B) -> Result<Vec<BucketView>, ApiError> {
    match backend.call(Request::Buckets).await {
        Response::Buckets(list) => Ok(list),
        Response::Error(e) => Err(ApiError::from_reply(e)),
        other => Err(ApiError::unexpected(&other)),
    }
}

/// The body of `PUT /buckets/{b}/props`: any subset.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PropsBody {
    n: Option<u8>,
    r: Option<u8>,
    w: Option<u8>,
}

async fn set_props<B: Backend>(
    backend: &B,
    bucket: String,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    ObjectKey::new(&bucket, b"-").map_err(|e| ApiError::bad(e.to_string()))?;
    let wanted: PropsBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(format!(
            "the body must be JSON like {{\"n\": 3, \"r\": 2, \"w\": 2}} (any of them): {e}"
        ))
    })?;
    let current = BucketView::of(&buckets(backend).await?, &bucket);
    let request = Request::SetBucket {
        bucket,
        n: wanted.n.unwrap_or(current.n),
        r: wanted.r.unwrap_or(current.r),
        w: wanted.w.unwrap_or(current.w),
    };
    match backend.call(request).await {
        Response::Done => Ok(empty(StatusCode::NO_CONTENT)),
        Response::Error(e) => Err(ApiError::from_reply(e)),
        other => Err(ApiError::unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_their_segments() {
        assert!(matches!(route("/buckets"), Some(Route::Buckets)));
        assert!(matches!(route("/buckets/"), Some(Route::Buckets)));
        match route("/buckets/carts/keys/a%2Fb%20c") {
            Some(Route::Key(b, k)) => {
                assert_eq!(b, "carts");
                assert_eq!(k, b"a/b c");
            }
            _ => panic!("not a key route"),
        }
        assert!(matches!(route("/buckets/carts/keys"), Some(Route::Keys(b)) if b == "carts"));
        assert!(matches!(route("/buckets/carts/props"), Some(Route::Props(b)) if b == "carts"));
        assert!(matches!(route("/metrics"), Some(Route::Metrics)));
        assert!(route("/nope").is_none());
        assert!(route("/buckets/carts/keys/a/b").is_none());
    }

    #[test]
    fn numbers_are_checked() {
        let uri: hyper::Uri = "/x?r=2&w=0&limit=abc&after=a%20b+c".parse().unwrap();
        let params = query(&uri);
        assert_eq!(number(&params, "r", 255).ok().flatten(), Some(2));
        assert!(number(&params, "w", 255).is_err());
        assert!(number(&params, "limit", 10).is_err());
        assert_eq!(number(&params, "missing", 10).ok().flatten(), None);
        assert_eq!(param(&params, "after"), Some(&b"a b c"[..]));
    }

    #[test]
    fn quorum_errors_carry_their_counts() {
        let e = ApiError::from_reply(ErrorReply {
            kind: ErrorKind::Unavailable,
            message: "1 of W = 2".into(),
            acks: 1,
            needed: 2,
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.quorum, Some((1, 2)));
        let r = e.into_response();
        assert_eq!(r.headers().get(RETRY_AFTER).unwrap(), "1");
    }
}
