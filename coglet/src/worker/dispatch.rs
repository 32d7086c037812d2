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
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::ipc::{SlotId, SlotRequest};
use crate::sync::lock;

use super::{
    OutputSink, PredictOutcome, PredictRequest, SlotStates, SlotWriters, finish_slot, load_input,
    send_slot, start_queued, terminal_message, unreadable_input,
};

/// Shared by the slot readers (which queue requests) and the event loop (which takes them).
pub struct Dispatcher {
    queue: Mutex<Queue>,
    // Read and written through `&UnixStream`: no lock needed.
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    states: SlotStates,
    writers: SlotWriters,
}

#[derive(Default)]
struct Queue {
    requests: VecDeque<(SlotId, SlotRequest)>,
    /// Set once a reader has decided to write a wake byte that `take` has not yet drained
    /// with the queue: readers write at most one byte per wake-up.
    wake_pending: bool,
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
            queue: Mutex::new(Queue::default()),
            wake_tx,
            wake_rx,
            states,
            writers,
        }))
    }

    /// Readable when [`take`](Self::take) may have predictions to hand out. Non-blocking; the
    /// loop should wait for it with its own poller (`loop.add_reader`, `poll`).
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Called by a slot reader: queue the request and wake the loop if it is not due already.
    pub(super) fn push(&self, slot: SlotId, request: SlotRequest) {
        let wake = {
            let mut queue = lock(&self.queue);
            queue.requests.push_back((slot, request));
            !std::mem::replace(&mut queue.wake_pending, true)
        };
        if wake {
            // WouldBlock means bytes are already waiting: the loop will look anyway.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// Every prediction waiting to start, each marked running on its slot. Never blocks; an
    /// empty result is normal (a wake-up whose requests an earlier call already took).
    /// Predictions canceled while queued were already answered and are skipped; a spilled
    /// input that cannot be read is answered here with `InvalidInput`.
    pub fn take(self: &Arc<Self>) -> Vec<Started> {
        // Read the wake bytes first, then take the queue and clear the flag together: a request
        // queued after that writes a byte that stays unread and wakes the loop again. (A byte
        // read here whose request is not yet queued only causes an empty take later.)
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        let batch: Vec<_> = {
            let mut queue = lock(&self.queue);
            queue.wake_pending = false;
            queue.requests.drain(..).collect()
        };
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
            if !start_queued(state, &id) {
                continue;
            }
            let input = match load_input(input, input_file) {
                Ok(input) => input,
                Err(e) => {
                    finish_slot(state, &id);
                    let msg = unreadable_input(id, &e);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::BufReader;
    use std::thread;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::ipc::{self, SlotResponse};
    use crate::worker::{Output, SlotState};

    fn request(id: &str) -> SlotRequest {
        SlotRequest::Predict {
            id: id.into(),
            input: Some(json!({"n": id})),
            input_file: None,
            output_dir: "/nonexistent/outputs".into(),
            context: HashMap::new(),
        }
    }

    /// `slots` socket pairs: the dispatcher writes to one end, the "server" reads the other.
    fn dispatcher(slots: usize) -> (Arc<Dispatcher>, Vec<UnixStream>) {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..slots {
            let (a, b) = UnixStream::pair().unwrap();
            ours.push(Arc::new(Mutex::new(a)));
            theirs.push(b);
        }
        let states: SlotStates = Arc::new((0..slots).map(|_| Mutex::default()).collect());
        (Dispatcher::new(states, Arc::new(ours)).unwrap(), theirs)
    }

    fn queue(d: &Dispatcher, slot: SlotId, id: &str) {
        lock(&d.states[slot as usize]).queued = Some(id.into());
        d.push(slot, request(id));
    }

    fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&raw mut p, 1, timeout_ms) > 0 }
    }

    /// Many predictions on every slot, each queued as soon as the previous one's result
    /// arrives (as the server does), one loop thread taking and finishing them: every one is
    /// answered exactly once, and the loop never sleeps through a queued request.
    #[test]
    fn no_request_is_lost_or_answered_twice() {
        const SLOTS: usize = 4;
        const PER_SLOT: usize = 500;
        let (d, servers) = dispatcher(SLOTS);
        let fd = d.wake_fd();
        let loop_thread = {
            let d = Arc::clone(&d);
            thread::spawn(move || {
                let mut done = 0;
                while done < SLOTS * PER_SLOT {
                    assert!(wait_readable(fd, 5000), "lost wake-up after {done}");
                    for started in d.take() {
                        assert_eq!(started.request.input["n"], started.request.id.as_str());
                        started.ticket.finish(PredictOutcome::Succeeded {
                            output: Some(Output::Json(json!(started.request.id))),
                            is_stream: false,
                        });
                        done += 1;
                    }
                }
            })
        };
        let clients: Vec<_> = servers
            .into_iter()
            .enumerate()
            .map(|(slot, server)| {
                let d = Arc::clone(&d);
                thread::spawn(move || {
                    server
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut reader = BufReader::new(server);
                    for i in 0..PER_SLOT {
                        let id = format!("s{slot}-{i}");
                        queue(&d, slot as SlotId, &id);
                        let msg: SlotResponse = ipc::read_frame(&mut reader).unwrap().unwrap();
                        match msg {
                            SlotResponse::Done { id: got, .. } => assert_eq!(got, id),
                            other => panic!("{other:?}"),
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        loop_thread.join().unwrap();
        for state in d.states.iter() {
            let s = lock(state);
            assert_eq!((s.running.as_deref(), s.queued.as_deref()), (None, None));
        }
    }

    #[test]
    fn canceled_while_queued_is_skipped_and_a_dropped_ticket_fails() {
        let (d, mut servers) = dispatcher(2);
        queue(&d, 0, "gone");
        queue(&d, 1, "kept");
        // The control thread answered "gone" while it waited in the queue.
        lock(&d.states[0]).queued = None;
        assert!(wait_readable(d.wake_fd(), 1000));
        let started = d.take();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].request.id, "kept");
        assert_eq!(lock(&d.states[1]).running.as_deref(), Some("kept"));
        // Nothing more to take, and no wake byte left over.
        assert!(d.take().is_empty());
        assert!(!wait_readable(d.wake_fd(), 0));

        drop(started);
        let msg: SlotResponse = ipc::read_frame(&mut servers[1]).unwrap().unwrap();
        match msg {
            SlotResponse::Failed { id, error } => {
                assert_eq!(id, "kept");
                assert!(error.contains("without an outcome"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let s: &SlotState = &lock(&d.states[1]);
        assert_eq!(s.running, None);
    }
}
