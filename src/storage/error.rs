//! The errors of [`crate::storage`], grouped by what the caller should do.
//!
//! A node branches on these: a *fatal* error (the file is corrupt, the disk
//! failed, another process holds the file) means the node must stop rather
//! than serve wrong data (DESIGN.md §5); [`StorageError::Closed`] means the
//! store is shutting down and the request should simply be dropped; a
//! *per-value* error ([`StorageError::Decode`], [`StorageError::Encode`],
//! [`StorageError::ValueTooLarge`]) concerns one key and the node reports it
//! and keeps serving. Every error that concerns the file names it.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the local store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    // ----- fatal: stop the node -----
    /// The file is not a database, or its contents fail redb's checks.
    #[error("storage file {path} is corrupted: {message}")]
    Corrupted {
        /// The database file.
        path: PathBuf,
        /// What redb (or the store) found wrong.
        message: String,
    },
    /// The file (or its folder) could not be created, opened or read.
    #[error("cannot open storage file {path}: {source}")]
    Unreadable {
        /// The database file or the folder that should hold it.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Another process (or another `Store` in this one) has the file open.
    #[error("storage file {path} is already open in another process or store")]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },
    /// The file was written by an incompatible version of redb or of this store.
    #[error("storage file {path} has an incompatible format: {message}")]
    Incompatible {
        /// The database file.
        path: PathBuf,
        /// Which format was found.
        message: String,
    },
    /// Reading or writing the file failed while the store was running.
    #[error("I/O error on storage file {path}: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The store hit a state it does not expect (a bug in the store or redb,
    /// or a thread that could not be started).
    #[error("internal storage error on {path}: {message}")]
    Internal {
        /// The database file.
        path: PathBuf,
        /// What happened.
        message: String,
    },

    // ----- shutting down: drop the request -----
    /// The store has been closed (or its writer thread has stopped).
    #[error("the store is closed")]
    Closed,

    // ----- one value: report it, keep serving -----
    /// The bytes stored under one key do not decode as the value type.
    #[error("the value stored under key {key:02x?} cannot be decoded: {message}")]
    Decode {
        /// The key whose value is unreadable.
        key: Vec<u8>,
        /// What the decoder said.
        message: String,
    },
    /// A value could not be encoded (the value type's `Serialize` failed).
    #[error("a value cannot be encoded: {message}")]
    Encode {
        /// What the encoder said.
        message: String,
    },
    /// An encoded value is larger than redb accepts.
    #[error("an encoded value of {bytes} bytes is too large to store")]
    ValueTooLarge {
        /// The size of the encoded value.
        bytes: usize,
    },
}

impl StorageError {
    /// True when the node must stop: the file is corrupt, unreadable, held by
    /// someone else, of an unknown format, or the disk failed.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Corrupted { .. }
                | Self::Unreadable { .. }
                | Self::AlreadyOpen { .. }
                | Self::Incompatible { .. }
                | Self::Io { .. }
                | Self::Internal { .. }
        )
    }

    /// True when the store is shutting down; the request can be dropped.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// True when the error concerns one value only; the store keeps serving.
    pub fn is_value_error(&self) -> bool {
        matches!(
            self,
            Self::Decode { .. } | Self::Encode { .. } | Self::ValueTooLarge { .. }
        )
    }

    /// The file this error is about, when it is about the file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Corrupted { path, .. }
            | Self::Unreadable { path, .. }
            | Self::AlreadyOpen { path }
            | Self::Incompatible { path, .. }
            | Self::Io { path, .. }
            | Self::Internal { path, .. } => Some(path),
            _ => None,
        }
    }

    /// A copy of this error for every caller of a failed group commit
    /// (`io::Error` is not `Clone`, so its kind and message are kept).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Corrupted { path, message } => Self::Corrupted {
                path: path.clone(),
                message: message.clone(),
            },
            Self::Unreadable { path, source } => Self::Unreadable {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::AlreadyOpen { path } => Self::AlreadyOpen { path: path.clone() },
            Self::Incompatible { path, message } => Self::Incompatible {
                path: path.clone(),
                message: message.clone(),
            },
            Self::Io { path, source } => Self::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::Internal { path, message } => Self::Internal {
                path: path.clone(),
                message: message.clone(),
            },
            Self::Closed => Self::Closed,
            Self::Decode { key, message } => Self::Decode {
                key: key.clone(),
                message: message.clone(),
            },
            Self::Encode { message } => Self::Encode {
                message: message.clone(),
            },
            Self::ValueTooLarge { bytes } => Self::ValueTooLarge { bytes: *bytes },
        }
    }

    /// Maps an error from redb, naming the file it concerns.
    pub(crate) fn from_redb(path: &Path, err: impl Into<redb::Error>) -> Self {
        let path = path.to_path_buf();
        match err.into() {
            redb::Error::Corrupted(message) => Self::Corrupted { path, message },
            redb::Error::Io(source) => Self::Io { path, source },
            redb::Error::PreviousIo => Self::Io {
                path,
                source: io::Error::other("an earlier I/O error left the database unusable"),
            },
            redb::Error::DatabaseAlreadyOpen => Self::AlreadyOpen { path },
            redb::Error::UpgradeRequired(version) => Self::Incompatible {
                path,
                message: format!("redb file format {version} needs an upgrade"),
            },
            redb::Error::ValueTooLarge(bytes) => Self::ValueTooLarge { bytes },
            err @ (redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TableIsNotMultimap(_)
            | redb::Error::TypeDefinitionChanged { .. }) => Self::Incompatible {
                path,
                message: err.to_string(),
            },
            other => Self::Internal {
                path,
                message: other.to_string(),
            },
        }
    }

    /// Maps an error from opening the file; I/O errors here mean the file
    /// could not be read at all.
    pub(crate) fn from_redb_open(path: &Path, err: redb::DatabaseError) -> Self {
        match err {
            // redb's answer to a file without its magic number.
            redb::DatabaseError::Storage(redb::StorageError::Io(source))
                if source.kind() == io::ErrorKind::InvalidData =>
            {
                Self::Corrupted {
                    path: path.to_path_buf(),
                    message: format!("not a redb database file ({source})"),
                }
            }
            // The file ends inside redb's header.
            redb::DatabaseError::Storage(redb::StorageError::Io(source))
                if source.kind() == io::ErrorKind::UnexpectedEof =>
            {
                Self::Corrupted {
                    path: path.to_path_buf(),
                    message: format!("the file is truncated ({source})"),
                }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Self::Unreadable {
                path: path.to_path_buf(),
                source,
            },
            other => Self::from_redb(path, other),
        }
    }
}
