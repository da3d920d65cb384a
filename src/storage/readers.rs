//! The reader pool: a few threads that run read transactions off the async
//! executor.
//!
//! redb reads are synchronous and may touch the disk, so [`super::Store`]
//! never runs them on an executor thread. Instead each read is a boxed job
//! sent through one bounded channel ([`super::READ_QUEUE_CAPACITY`]) to
//! [`super::READER_THREADS`] threads that share its receiver. A job decodes
//! the value on the reader thread too and answers through a oneshot, so the
//! executor only pays for a channel send and a wake-up. A full queue makes
//! callers wait (back-pressure), it never grows. This pool works under any
//! executor, unlike `spawn_blocking`, which needs a tokio runtime (the
//! simulator may drive the store from its own loop); for many small reads it
//! is about as fast (see the benchmark in the tests).
//!
//! The threads stop when the channel closes (every handle dropped) or when
//! each receives a [`ReadMessage::Stop`] (the store was closed).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::Database;
use tokio::sync::mpsc;

/// One read to run against the database.
pub(crate) type ReadJob = Box<dyn FnOnce(&Database) + Send>;

/// What a reader thread receives.
pub(crate) enum ReadMessage {
    /// Run this read.
    Job(ReadJob),
    /// Stop this thread (one per thread is sent on close).
    Stop,
}

/// Starts `count` reader threads sharing one bounded queue of `capacity` jobs.
///
/// If a thread cannot be started the threads already started are stopped
/// (their queue closes when the sender is dropped) and the error returned.
pub(crate) fn spawn_readers(
    db: Arc<Database>,
    count: usize,
    capacity: usize,
) -> std::io::Result<(mpsc::Sender<ReadMessage>, Vec<JoinHandle<()>>)> {
    let (sender, receiver) = mpsc::channel(capacity);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let db = Arc::clone(&db);
        let receiver = Arc::clone(&receiver);
        let spawned = std::thread::Builder::new()
            .name(format!("dynamo-store-reader-{index}"))
            .spawn(move || reader_loop(&db, &receiver));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(err) => {
                drop(sender);
                for handle in threads {
                    let _ = handle.join();
                }
                return Err(err);
            }
        }
    }
    Ok((sender, threads))
}

fn reader_loop(db: &Database, receiver: &Mutex<mpsc::Receiver<ReadMessage>>) {
    loop {
        // One thread waits in `blocking_recv` holding the lock; the others
        // wait for the lock. The lock is released before the job runs.
        let message = {
            let mut receiver = receiver
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            receiver.blocking_recv()
        };
        match message {
            Some(ReadMessage::Job(job)) => job(db),
            Some(ReadMessage::Stop) | None => return,
        }
    }
}
