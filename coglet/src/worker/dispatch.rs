//! Event-loop mode: every slot's requests go into one queue that the handler's own event loop
//! drains, so that one thread (an asyncio loop, say) starts and finishes every prediction.
//!
//! Why: with a thread per slot, each prediction of an async runner crossed threads twice (slot
//! thread -> event loop -> slot thread), and under load those threads queued for the Python
//! GIL. Here the slot readers are plain Rust threads that never touch the handler: they queue
//! the request and, if the loop is not already due to look, write one byte to a wake socket.
//! The loop watches [`Dispatcher::wake_fd`], calls [`Dispatcher::take`] for a batch, and ends
//! each prediction with [`Ticket::finish`], which sends the terminal message from that thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::ipc::{SlotId, SlotRequest, SlotResponse};

use super::{
    OutputSink, PredictOutcome, PredictRequest, SlotStates, SlotWriters, finish_slot, load_input,
    lock, send_slot, terminal_message,
};

/// Shared by the slot readers (which queue requests) and the event loop (which takes them).
pub struct Dispatcher {
    queue: Mutex<VecDeque<(SlotId, SlotRequest)>>,
    /// Set while a wake byte is unread: readers write at most one byte per wake-up.
    wake_pending: AtomicBool,
    wake_tx: Mutex<UnixStream>,
    wake_rx: Mutex<UnixStream>,
    states: SlotStates,
    writers: SlotWriters,
}

/// A prediction the event loop should start now.
pub struct Started {
    pub slot: SlotId,
    pub request: PredictRequest,
    pub ticket: Ticket,
}

/// The right to end one running prediction. [`Ticket::finish`] sends its terminal message;
/// a ticket dropped unfinished fails the prediction, so a bug in the loop cannot leave a
/// request hanging.
pub struct Ticket {
    slot: SlotId,
    sink: OutputSink,
    started: Instant,
    dispatcher: Arc<Dispatcher>,
    finished: bool,
}

impl Dispatcher {
    pub(super) fn new(states: SlotStates, writers: SlotWriters) -> io::Result<Arc<Self>> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            wake_pending: AtomicBool::new(false),
            wake_tx: Mutex::new(wake_tx),
            wake_rx: Mutex::new(wake_rx),
            states,
            writers,
        }))
    }

    /// Readable when [`take`](Self::take) may have predictions to hand out. Non-blocking; the
    /// loop should wait for it with its own poller (`loop.add_reader`, `poll`).
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_raw_fd()
    }

    /// Called by a slot reader: queue the request and wake the loop if it is not due already.
    pub(super) fn push(&self, slot: SlotId, request: SlotRequest) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back((slot, request));
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let mut tx = self.wake_tx.lock().unwrap_or_else(PoisonError::into_inner);
            // WouldBlock means bytes are already waiting: the loop will look anyway.
            let _ = tx.write(&[1]);
        }
    }

    /// Every prediction waiting to start, each marked running on its slot. Never blocks; an
    /// empty result is normal (a wake-up whose requests an earlier call already took).
    /// Predictions canceled while queued were already answered and are skipped; a spilled
    /// input that cannot be read is answered here with `InvalidInput`.
    pub fn take(self: &Arc<Self>) -> Vec<Started> {
        // Clear first, then drain: a request queued after this point writes a new byte.
        self.wake_pending.store(false, Ordering::Release);
        {
            let mut rx = self.wake_rx.lock().unwrap_or_else(PoisonError::into_inner);
            let mut buf = [0u8; 64];
            while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
        }
        let batch: Vec<_> = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        let mut started = Vec::with_capacity(batch.len());
        for (slot, request) in batch {
            let (Some(state), Some(writer)) = (
                self.states.get(slot as usize),
                self.writers.get(slot as usize),
            ) else {
                continue;
            };
            let SlotRequest::Predict {
                id,
                input,
                input_file,
                output_dir,
                context,
            } = request;
            {
                let mut s = lock(state);
                if s.queued.as_deref() != Some(id.as_str()) {
                    // Canceled while queued: its terminal message is already sent.
                    continue;
                }
                s.queued = None;
                s.running = Some(id.clone());
            }
            let input = match load_input(input, input_file) {
                Ok(input) => input,
                Err(e) => {
                    finish_slot(state, &id);
                    let msg = SlotResponse::InvalidInput {
                        id,
                        error: format!("could not read the spilled input: {e}"),
                    };
                    if send_slot(writer, &msg).is_err() {
                        tracing::warn!(slot, "could not answer a prediction: slot socket closed");
                    }
                    continue;
                }
            };
            let sink = OutputSink::new(id.clone(), Arc::clone(writer), output_dir.clone());
            started.push(Started {
                slot,
                request: PredictRequest {
                    id,
                    input,
                    context,
                    output_dir,
                },
                ticket: Ticket {
                    slot,
                    sink,
                    started: Instant::now(),
                    dispatcher: Arc::clone(self),
                    finished: false,
                },
            });
        }
        started
    }
}

impl Ticket {
    pub fn slot(&self) -> SlotId {
        self.slot
    }

    /// Where the prediction streams logs, outputs and metrics while it runs.
    pub fn sink(&self) -> &OutputSink {
        &self.sink
    }

    /// Ends the prediction: closes its sink, frees the slot and sends the terminal message.
    pub fn finish(mut self, outcome: PredictOutcome) {
        self.send_terminal(outcome);
    }

    fn send_terminal(&mut self, outcome: PredictOutcome) {
        self.finished = true;
        let predict_time = self.started.elapsed().as_secs_f64();
        // Late writes from tasks the runner left behind are dropped from here on.
        self.sink.close();
        let id = self.sink.prediction_id().to_string();
        let terminal = terminal_message(&self.sink, id.clone(), outcome, predict_time);
        let slot = self.slot as usize;
        let d = &self.dispatcher;
        let (Some(state), Some(writer)) = (d.states.get(slot), d.writers.get(slot)) else {
            return;
        };
        finish_slot(state, &id);
        if send_slot(writer, &terminal).is_err() {
            tracing::warn!(
                slot,
                "could not send a prediction's result: slot socket closed"
            );
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.send_terminal(PredictOutcome::Failed(
                "internal error: the worker dropped the prediction without an outcome".into(),
            ));
        }
    }
}
