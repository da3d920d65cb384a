//! Frames: how one message travels on a QUIC stream.
//!
//! A frame is a 4-byte big-endian payload length followed by exactly that
//! many bytes of [postcard]-encoded payload (DESIGN.md §4, "length-prefixed,
//! every length is checked against a limit *before* allocating"). This
//! module owns that format and nothing else: it does not know the message
//! enum, the request ids of [`super::transport`] or QUIC.
//!
//! The invariant every decoder here keeps: a length read from the peer is
//! compared with the limit before a single byte is reserved for it, so a
//! hostile or corrupt length prefix costs at most the 4 bytes it took to
//! send. A payload must decode to exactly one message; trailing bytes are
//! an error, not silently dropped. After any error the stream is out of
//! step and must be closed: there is no resynchronisation.
//!
//! Two decoders share these rules: [`read_frame`] for async streams (the
//! transport) and [`FrameDecoder`], a sync incremental decoder for bytes
//! that arrive in arbitrary pieces (tests, fuzzing).

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest payload a frame may carry, in bytes (8 MiB). Values are
/// limited well below this by the protocol; this is the last line.
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Size of the length prefix in front of every payload.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Why a frame could not be written or read.
///
/// All variants except [`WireError::Io`] mean the bytes themselves are
/// wrong; the stream they came from cannot be trusted any further.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The length prefix announces more than the limit allows.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Payload length announced by the prefix.
        len: usize,
        /// Limit in force.
        limit: usize,
    },
    /// A message to send encodes to more than the limit allows.
    #[error("message encodes to more than the limit of {limit} bytes")]
    MessageTooLarge {
        /// Limit in force.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The payload is not a valid encoding of the expected message.
    #[error("malformed frame payload: {0}")]
    Malformed(#[from] postcard::Error),
    /// The payload decoded to a message but bytes were left over.
    #[error("frame payload has {trailing} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left.
        trailing: usize,
    },
    /// Reading from the stream failed.
    #[error("stream read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A postcard output flavor that appends to a `Vec` and refuses to grow the
/// payload past `limit`, so encoding a huge message fails early instead of
/// allocating it whole.
struct LimitedVec<'a> {
    out: &'a mut Vec<u8>,
    written: usize,
    limit: usize,
}

impl postcard::ser_flavors::Flavor for LimitedVec<'_> {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.written.saturating_add(data.len()) > self.limit {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.out.extend_from_slice(data);
        self.written += data.len();
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.written)
    }
}

/// Appends `msg` as one frame to `out`.
///
/// On error `out` is left as it was. Fails with
/// [`WireError::MessageTooLarge`] when the payload would exceed
/// [`FRAME_BYTES_MAX`]; encoding stops at the limit, so a huge message
/// never allocates more than the limit.
pub fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), WireError> {
    encode_frame_limited(msg, out, FRAME_BYTES_MAX)
}

fn encode_frame_limited<T: Serialize>(
    msg: &T,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    let flavor = LimitedVec {
        out,
        written: 0,
        limit,
    };
    let encoded = postcard::serialize_with_flavor(msg, flavor);
    let len = match encoded {
        Ok(len) => len,
        Err(err) => {
            out.truncate(start);
            return Err(match err {
                postcard::Error::SerializeBufferFull => WireError::MessageTooLarge { limit },
                other => WireError::Malformed(other),
            });
        }
    };
    // `len <= limit <= FRAME_BYTES_MAX < u32::MAX`, so the conversion holds;
    // stay defensive all the same.
    let Ok(len_u32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(WireError::MessageTooLarge { limit });
    };
    out[start..start + FRAME_HEADER_BYTES].copy_from_slice(&len_u32.to_be_bytes());
    Ok(())
}

/// Decodes one payload: exactly one message, nothing after it.
fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
    let (msg, rest) = postcard::take_from_bytes::<T>(payload)?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            trailing: rest.len(),
        });
    }
    Ok(msg)
}

/// Reads one frame from `r` and decodes it.
///
/// Returns `Ok(None)` when the stream ends cleanly at a frame boundary.
/// `buf` is scratch space reused across calls; it grows to the largest
/// payload seen, never beyond `limit`, and the length prefix is checked
/// against `limit` before `buf` grows.
pub async fn read_frame<T, R>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<Option<T>, WireError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; FRAME_HEADER_BYTES];
    // The first byte tells a clean end (no byte at all) from a truncation.
    let mut filled = 0;
    while filled < FRAME_HEADER_BYTES {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(WireError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(WireError::TooLarge { len, limit });
    }
    buf.clear();
    buf.reserve_exact(len);
    buf.resize(len, 0);
    match r.read_exact(buf).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(WireError::Truncated)
        }
        Err(err) => return Err(WireError::Io(err)),
    }
    decode_payload(buf).map(Some)
}

/// An incremental, synchronous frame decoder: push bytes as they arrive
/// in any pieces, take whole messages out.
///
/// It holds only the bytes pushed and not yet consumed; it never reserves
/// room for a payload because a prefix announced it. After an error the
/// decoder is out of step with the stream and should be dropped.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    /// Start of the first unconsumed byte in `buffer`.
    consumed: usize,
    limit: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(FRAME_BYTES_MAX)
    }
}

impl FrameDecoder {
    /// A decoder that refuses payloads longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buffer: Vec::new(),
            consumed: 0,
            limit,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop consumed bytes before growing, so the buffer never holds
        // more than what is still pending plus this push.
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes pushed and not yet consumed by a decoded frame.
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len() - self.consumed
    }

    /// Decodes the next whole frame, or returns `Ok(None)` when more bytes
    /// are needed. An oversized length prefix fails as soon as its 4 bytes
    /// are in, without waiting for the payload.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, WireError> {
        let pending = &self.buffer[self.consumed..];
        let Some(header) = pending.get(..FRAME_HEADER_BYTES) else {
            return Ok(None);
        };
        let mut prefix = [0u8; FRAME_HEADER_BYTES];
        prefix.copy_from_slice(header);
        let len = u32::from_be_bytes(prefix) as usize;
        if len > self.limit {
            return Err(WireError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        let Some(payload) = pending.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
            return Ok(None);
        };
        let msg = decode_payload(payload)?;
        self.consumed += FRAME_HEADER_BYTES + len;
        if self.consumed == self.buffer.len() {
            self.buffer.clear();
            self.consumed = 0;
        }
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    /// A message shaped like the protocol's: an enum with strings, bytes,
    /// numbers and nesting.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum TestMsg {
        Get {
            key: String,
        },
        Put {
            key: String,
            value: Vec<u8>,
            clock: Vec<(u32, u64)>,
        },
        Ack(u64),
        Nested(Vec<Option<TestMsg>>),
    }

    fn arb_msg() -> impl Strategy<Value = TestMsg> {
        let leaf = prop_oneof![
            ".{0,20}".prop_map(|key| TestMsg::Get { key }),
            (
                ".{0,20}",
                proptest::collection::vec(any::<u8>(), 0..200),
                proptest::collection::vec(any::<(u32, u64)>(), 0..8)
            )
                .prop_map(|(key, value, clock)| TestMsg::Put { key, value, clock }),
            any::<u64>().prop_map(TestMsg::Ack),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            proptest::collection::vec(proptest::option::of(inner), 0..4).prop_map(TestMsg::Nested)
        })
    }

    /// Splits `bytes` at the given cut points (taken modulo the length).
    fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() })
            .collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        points.dedup();
        points
            .windows(2)
            .map(|w| bytes[w[0]..w[1]].to_vec())
            .collect()
    }

    fn decode_all(dec: &mut FrameDecoder) -> Result<Vec<TestMsg>, WireError> {
        let mut out = Vec::new();
        while let Some(msg) = dec.next_frame::<TestMsg>()? {
            out.push(msg);
        }
        Ok(out)
    }

    #[test]
    fn frame_is_length_prefix_then_postcard() -> Result<(), WireError> {
        let mut out = Vec::new();
        encode_frame(&TestMsg::Ack(7), &mut out)?;
        let payload = postcard::to_allocvec(&TestMsg::Ack(7))?;
        assert_eq!(out[..4], (payload.len() as u32).to_be_bytes());
        assert_eq!(out[4..], payload[..]);
        Ok(())
    }

    #[test]
    fn encode_refuses_oversized_message_and_leaves_buffer() {
        let mut out = vec![1, 2, 3];
        let big = vec![0u8; 100];
        let err = encode_frame_limited(&big, &mut out, 50);
        assert!(matches!(err, Err(WireError::MessageTooLarge { limit: 50 })));
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn oversized_prefix_fails_before_payload_arrives() {
        let mut dec = FrameDecoder::new(1024);
        dec.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            dec.next_frame::<TestMsg>(),
            Err(WireError::TooLarge { len, limit: 1024 }) if len == u32::MAX as usize
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut payload = postcard::to_allocvec(&TestMsg::Ack(1)).unwrap_or_default();
        payload.push(0);
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        let mut dec = FrameDecoder::default();
        dec.push(&frame);
        assert!(matches!(
            dec.next_frame::<TestMsg>(),
            Err(WireError::TrailingBytes { trailing: 1 })
        ));
    }

    #[tokio::test]
    async fn read_frame_tells_clean_end_from_truncation() {
        let mut frame = Vec::new();
        assert!(encode_frame(&TestMsg::Ack(9), &mut frame).is_ok());
        let mut buf = Vec::new();

        let mut whole: &[u8] = &frame;
        let first = read_frame::<TestMsg, _>(&mut whole, &mut buf, FRAME_BYTES_MAX).await;
        assert!(matches!(first, Ok(Some(TestMsg::Ack(9)))));
        let end = read_frame::<TestMsg, _>(&mut whole, &mut buf, FRAME_BYTES_MAX).await;
        assert!(matches!(end, Ok(None)));

        for cut in 1..frame.len() {
            let mut part: &[u8] = &frame[..cut];
            let got = read_frame::<TestMsg, _>(&mut part, &mut buf, FRAME_BYTES_MAX).await;
            assert!(matches!(got, Err(WireError::Truncated)), "cut at {cut}");
        }

        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
        let got = read_frame::<TestMsg, _>(&mut huge, &mut buf, FRAME_BYTES_MAX).await;
        assert!(matches!(got, Err(WireError::TooLarge { .. })));
        assert!(buf.capacity() <= FRAME_BYTES_MAX);
    }

    proptest! {
        #[test]
        fn frames_round_trip_in_any_chunking(
            msgs in proptest::collection::vec(arb_msg(), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut stream = Vec::new();
            for msg in &msgs {
                prop_assert!(encode_frame(msg, &mut stream).is_ok());
            }
            let mut dec = FrameDecoder::default();
            let mut got = Vec::new();
            for chunk in chunks(&stream, &cuts) {
                dec.push(&chunk);
                got.extend(decode_all(&mut dec).map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
            prop_assert_eq!(&got, &msgs);
            prop_assert_eq!(dec.pending_bytes(), 0);

            // The async reader agrees, ending cleanly at the boundary.
            let rt = tokio::runtime::Builder::new_current_thread().build()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read_back = rt.block_on(async {
                let mut r: &[u8] = &stream;
                let mut buf = Vec::new();
                let mut out = Vec::new();
                while let Some(m) = read_frame::<TestMsg, _>(&mut r, &mut buf, FRAME_BYTES_MAX).await? {
                    out.push(m);
                }
                Ok::<_, WireError>(out)
            }).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&read_back, &msgs);
        }

        #[test]
        fn random_bytes_never_panic_nor_overallocate(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            const LIMIT: usize = 512;
            let mut dec = FrameDecoder::new(LIMIT);
            let mut pushed = 0;
            for chunk in chunks(&bytes, &cuts) {
                pushed += chunk.len();
                dec.push(&chunk);
                // Memory follows what was pushed, never what a prefix claims.
                prop_assert!(dec.buffer.capacity() <= 2 * pushed.max(8));
                match decode_all(&mut dec) {
                    Ok(_) => {}
                    Err(WireError::TooLarge { len, limit }) => prop_assert!(len > limit),
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn mutated_frames_never_panic_nor_overallocate(
            msgs in proptest::collection::vec(arb_msg(), 1..6),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut stream = Vec::new();
            for msg in &msgs {
                prop_assert!(encode_frame(msg, &mut stream).is_ok());
            }
            for (at, byte) in flips {
                let i = at % stream.len();
                stream[i] = byte;
            }
            let mut dec = FrameDecoder::new(FRAME_BYTES_MAX);
            dec.push(&stream);
            let _ = decode_all(&mut dec);
            prop_assert!(dec.buffer.capacity() <= 2 * stream.len().max(8));

            let rt = tokio::runtime::Builder::new_current_thread().build()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let limit = stream.len();
            let max_cap = rt.block_on(async {
                let mut r: &[u8] = &stream;
                let mut buf = Vec::new();
                while let Ok(Some(_)) = read_frame::<TestMsg, _>(&mut r, &mut buf, limit).await {}
                buf.capacity()
            });
            prop_assert!(max_cap <= limit);
        }
    }
}
