//! Buckets and keys: what names an object, the limits on names, and the
//! stable hash that places a key on the ring.
//!
//! Keys live in buckets (namespaces), as in Riak, so several applications can
//! share one cluster. A key's ring position is the first eight bytes, read
//! big-endian, of `BLAKE3(len(bucket) as one byte ‖ bucket ‖ key)`. The hash
//! is part of the on-disk and on-the-wire contract: changing it moves every
//! key, so it never changes within a major version.

use serde::{Deserialize, Serialize};

use crate::config::{BUCKET_BYTES_MAX, KEY_BYTES_MAX};

/// A bucket and a key within it: the name of one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The bucket (namespace).
    pub bucket: String,
    /// The key's bytes (any bytes, 1 to [`KEY_BYTES_MAX`]).
    pub key: Vec<u8>,
}

/// Why a bucket or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key has no bytes.
    #[error("the key is empty")]
    EmptyKey,
    /// The key is longer than the limit.
    #[error("the key is {len} bytes; keys are at most {max} bytes")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bucket name is empty, too long or has characters outside `A-Za-z0-9_.-`.
    #[error("invalid bucket name {0:?}: use 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'")]
    BadBucket(String),
}

impl ObjectKey {
    /// Names an object, checking the limits.
    pub fn new(bucket: &str, key: &[u8]) -> Result<Self, KeyError> {
        let key = Self {
            bucket: bucket.to_string(),
            key: key.to_vec(),
        };
        key.validate()?;
        Ok(key)
    }

    /// Checks the limits on bucket and key.
    pub fn validate(&self) -> Result<(), KeyError> {
        let bucket_ok = !self.bucket.is_empty()
            && self.bucket.len() <= BUCKET_BYTES_MAX
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(KeyError::BadBucket(self.bucket.clone()));
        }
        if self.key.is_empty() {
            return Err(KeyError::EmptyKey);
        }
        if self.key.len() > KEY_BYTES_MAX {
            return Err(KeyError::KeyTooLong {
                len: self.key.len(),
                max: KEY_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// The key's position on the 64-bit ring (see the module documentation).
    pub fn ring_position(&self) -> u64 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[self.bucket.len() as u8]);
        hasher.update(self.bucket.as_bytes());
        hasher.update(&self.key);
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_be_bytes(first)
    }

    /// The storage key: `len(bucket) ‖ bucket ‖ key`, so one bucket's keys sort together.
    pub fn storage_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.bucket.len() + self.key.len());
        out.push(self.bucket.len() as u8);
        out.extend_from_slice(self.bucket.as_bytes());
        out.extend_from_slice(&self.key);
        out
    }

    /// Reads a storage key back; `None` if the bytes are not one.
    pub fn from_storage_key(bytes: &[u8]) -> Option<Self> {
        let (&len, rest) = bytes.split_first()?;
        let len = len as usize;
        if rest.len() < len {
            return None;
        }
        let bucket = std::str::from_utf8(&rest[..len]).ok()?.to_string();
        Some(Self {
            bucket,
            key: rest[len..].to_vec(),
        })
    }

    /// The key as text when it is UTF-8, else escaped.
    pub fn display_key(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        assert_eq!(ObjectKey::new("default", b""), Err(KeyError::EmptyKey));
        assert!(ObjectKey::new("default", &[b'a'; 1024]).is_ok());
        assert!(matches!(
            ObjectKey::new("default", &[b'a'; 1025]),
            Err(KeyError::KeyTooLong { len: 1025, .. })
        ));
        assert!(ObjectKey::new("", b"k").is_err());
        assert!(ObjectKey::new("a/b", b"k").is_err());
        assert!(ObjectKey::new(&"b".repeat(65), b"k").is_err());
    }

    #[test]
    fn ring_position_is_stable() {
        // The hash is a contract: these values must never change.
        let k = ObjectKey::new("default", b"hello").unwrap();
        assert_eq!(k.ring_position(), k.clone().ring_position());
        let other_bucket = ObjectKey::new("carts", b"hello").unwrap();
        assert_ne!(k.ring_position(), other_bucket.ring_position());
        let golden = ObjectKey::new("default", b"k").unwrap().ring_position();
        assert_eq!(
            golden, GOLDEN_DEFAULT_K,
            "the key hash changed: {golden:#018x}"
        );
    }

    const GOLDEN_DEFAULT_K: u64 = 0x8af2_4dce_8d61_e803;

    #[test]
    fn storage_key_round_trips() {
        let k = ObjectKey::new("b-1", b"\x00\xffkey").unwrap();
        assert_eq!(ObjectKey::from_storage_key(&k.storage_key()), Some(k));
        assert_eq!(ObjectKey::from_storage_key(&[5, b'a']), None);
    }
}
