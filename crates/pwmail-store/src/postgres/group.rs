//! Calls gathered into groups, one statement per group.
//!
//! One task per kind of call takes every call waiting and runs those that
//! fit together as one statement; while a group's statement runs, the next
//! gathers. [`IN_FLIGHT`] groups of a kind run at once: two were slower
//! than one (measured, same run: −27 % and −35 % req/s), their groups
//! smaller and waiting on each other's row locks (the caller's rate row). Each caller hears back only after the statement that holds
//! its call, with its own answer; a group none of whose callers still
//! waits is abandoned. A call that does not fit the group (see
//! [`Grouped::fits`]) waits for the next one, ahead of later arrivals.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::pool::Pool;
use crate::{Result, StoreError};

/// Calls waiting before callers wait to enqueue.
const QUEUE: usize = 4096;
/// Groups of one kind running at once.
const IN_FLIGHT: usize = 1;

/// A kind of call that runs in groups.
pub(super) trait Grouped: Send + Sync + 'static {
    type Call: Send + Sync + 'static;
    type Answer: Send + 'static;
    /// Largest group one statement takes.
    const MAX: usize;
    /// Whether `call` may join `group` (which it is not in yet).
    fn fits(group: &[Self::Call], call: &Self::Call) -> bool;
    /// One statement for `group`: each call's answer, in order, or the
    /// group's error (none of it took effect).
    fn run(
        pool: &Pool,
        group: &[Self::Call],
    ) -> impl Future<Output = Result<Vec<Result<Self::Answer>>>> + Send;
}

/// The queue to a kind's task; the task ends when this is dropped.
pub(super) struct Groups<G: Grouped> {
    queue: mpsc::Sender<Waiting<G>>,
}

impl<G: Grouped> Groups<G> {
    /// Starts the task on the current tokio runtime.
    pub(super) fn start(pool: Arc<Pool>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run::<G>(pool, waiting));
        Groups { queue }
    }

    /// Runs `call` with the others waiting.
    pub(super) async fn call(&self, call: G::Call) -> Result<G::Answer> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send((call, done))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// A call and where its answer goes.
type Waiting<G> = (
    <G as Grouped>::Call,
    oneshot::Sender<Result<<G as Grouped>::Answer>>,
);

async fn run<G: Grouped>(pool: Arc<Pool>, mut waiting: mpsc::Receiver<Waiting<G>>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut pending: Vec<Waiting<G>> = Vec::with_capacity(G::MAX);
    loop {
        if pending.is_empty() && waiting.recv_many(&mut pending, G::MAX).await == 0 {
            return;
        }
        // Gather until a slot is free, then take what has come meanwhile.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        while pending.len() < G::MAX {
            match waiting.try_recv() {
                Ok(call) => pending.push(call),
                Err(_) => break,
            }
        }
        let (mut calls, mut answers) = (Vec::new(), Vec::new());
        let mut later = Vec::new();
        for (call, done) in pending.drain(..) {
            if G::fits(&calls, &call) {
                calls.push(call);
                answers.push(done);
            } else {
                later.push((call, done));
            }
        }
        pending = later;
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            // A group whose every caller has given up (its request timed
            // out, the dispatcher's store timeout passed) is abandoned, as
            // a call's own statement was: dropped mid-statement, its
            // connection is closed, and the next group takes a fresh one
            // rather than queueing behind one that stopped answering.
            let results = {
                let gone = futures::future::join_all(answers.iter_mut().map(|a| a.closed()));
                tokio::select! {
                    results = G::run(&pool, &calls) => Some(results),
                    _ = gone => None,
                }
            };
            if let Some(results) = results {
                answer(results, answers);
            }
            drop(slot);
        });
    }
}

/// Tells each caller of a group its answer.
fn answer<A>(results: Result<Vec<Result<A>>>, answers: Vec<oneshot::Sender<Result<A>>>) {
    match results {
        Ok(results) if results.len() == answers.len() => {
            for (done, result) in answers.into_iter().zip(results) {
                let _ = done.send(result);
            }
        }
        Ok(results) => {
            let message = format!("{} answers for {} calls", results.len(), answers.len());
            for done in answers {
                let _ = done.send(Err(StoreError::Corrupt(message.clone())));
            }
        }
        // Each caller hears the group's error, retryable as it was; a full
        // disk stays one, so callers are told what it is.
        Err(StoreError::Full(message)) => {
            for done in answers {
                let _ = done.send(Err(StoreError::Full(message.clone())));
            }
        }
        Err(e) => {
            let (retryable, message) = (e.is_retryable(), e.to_string());
            for done in answers {
                let _ = done.send(Err(StoreError::BatchFailed {
                    retryable,
                    message: message.clone(),
                }));
            }
        }
    }
}
