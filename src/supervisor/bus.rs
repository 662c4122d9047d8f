//! The event bus: a bounded broadcast. A subscriber that falls more than the capacity
//! behind is not allowed to slow the supervisor down; it is told exactly how many events it
//! missed (`Lagged`) and carries on from the oldest event still held.
//!
//! Streamed model text is coalesced before it reaches subscribers: a run's deltas wait at
//! most [`COALESCE`] and go out with every byte in order, the text of all runs that
//! streamed in that frame in one event (`ModelDelta` for one run, `ModelDeltas` for
//! several), so twenty runs streaming a hundred lines a second make about sixty events a
//! second, not thousands: each is one socket line and one wake-up for an attached
//! console. Any other event first sends the deltas waiting, so nothing overtakes the text
//! it follows. Text a publisher gathered itself (an agent's output, read every 30 ms) goes
//! out at once, after the text waiting ([`EventBus::publish_delta_gathered`]).

use super::{Event, RunText};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// The longest a streamed delta waits to be sent with the ones after it: a frame.
pub const COALESCE: Duration = Duration::from_millis(16);

#[derive(Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

struct Shared {
    tx: broadcast::Sender<Arc<Event>>,
    /// Text waiting per run, in the order runs first sent it; the flusher's task.
    pending: Mutex<Pending>,
    /// Wakes the flusher when text starts waiting (and when the bus goes).
    wake: Arc<Notify>,
    coalesce: bool,
}

#[derive(Default)]
struct Pending {
    deltas: Vec<(String, String)>,
    flusher: Option<tokio::task::JoinHandle<()>>,
}

impl Shared {
    /// Sends the text waiting, every run's in one event; the caller holds `pending`, so
    /// sends keep their order.
    fn flush(&self, pending: &mut Pending) {
        let event = match pending.deltas.len() {
            0 => return,
            1 => {
                let Some((run_id, text)) = pending.deltas.pop() else {
                    return;
                };
                Event::ModelDelta {
                    run_id,
                    text: Arc::from(text),
                }
            }
            _ => Event::ModelDeltas {
                deltas: pending
                    .deltas
                    .drain(..)
                    .map(|(run_id, text)| RunText {
                        run_id,
                        text: Arc::from(text),
                    })
                    .collect(),
            },
        };
        let _ = self.tx.send(Arc::new(event));
    }

    /// Sends a run's text at once, after the text waiting.
    fn send_delta_now(&self, pending: &mut Pending, run_id: &str, text: &str) {
        self.flush(pending);
        let _ = self.tx.send(Arc::new(Event::ModelDelta {
            run_id: run_id.to_string(),
            text: Arc::from(text),
        }));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain data behind; carry on with it.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut *self.lock());
        self.flush(&mut pending);
        if let Some(flusher) = pending.flusher.take() {
            flusher.abort();
        }
        self.wake.notify_one();
    }
}

/// Sends the waiting text a frame after it started waiting, until the bus is gone.
async fn flusher(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(COALESCE).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut pending = shared.lock();
        shared.flush(&mut pending);
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Event(Arc<Event>),
    /// The subscriber fell behind and `missed` events were dropped for it.
    Lagged {
        missed: u64,
    },
}

pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
}

/// A handle that does not keep the bus alive: for tasks that publish while it lives.
#[derive(Clone)]
pub struct WeakEventBus(Weak<Shared>);

impl WeakEventBus {
    pub fn upgrade(&self) -> Option<EventBus> {
        self.0.upgrade().map(|shared| EventBus { shared })
    }
}

impl EventBus {
    pub fn downgrade(&self) -> WeakEventBus {
        WeakEventBus(Arc::downgrade(&self.shared))
    }

    pub fn new(capacity: usize) -> EventBus {
        EventBus::with_coalescing(capacity, true)
    }

    /// A bus that sends every delta as it comes (for comparison in benchmarks).
    pub fn uncoalesced(capacity: usize) -> EventBus {
        EventBus::with_coalescing(capacity, false)
    }

    fn with_coalescing(capacity: usize, coalesce: bool) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus {
            shared: Arc::new(Shared {
                tx,
                pending: Mutex::new(Pending::default()),
                wake: Arc::new(Notify::new()),
                coalesce,
            }),
        }
    }

    /// Sends to every subscriber, after any streamed text still waiting; with no
    /// subscriber, the event is simply not kept.
    pub fn publish(&self, event: Event) {
        self.publish_shared(Arc::new(event));
    }

    /// Sends an event that is already shared.
    pub fn publish_shared(&self, event: Arc<Event>) {
        let mut pending = self.shared.lock();
        self.shared.flush(&mut pending);
        let _ = self.shared.tx.send(event);
    }

    /// Streamed model text of a run: sent within [`COALESCE`], joined with the text of the
    /// same run that came meanwhile. Outside a Tokio runtime it is sent at once.
    pub fn publish_delta(&self, run_id: &str, text: &str) {
        let shared = &self.shared;
        let mut pending = shared.lock();
        let runtime = tokio::runtime::Handle::try_current().ok();
        if !shared.coalesce || runtime.is_none() {
            shared.send_delta_now(&mut pending, run_id, text);
            return;
        }
        let was_empty = pending.deltas.is_empty();
        match pending.deltas.iter_mut().find(|(run, _)| run == run_id) {
            Some((_, waiting)) => waiting.push_str(text),
            None => pending.deltas.push((run_id.to_string(), text.to_string())),
        }
        // A flusher per bus, started in the runtime of the first delta (again if that
        // runtime has gone).
        let mut fresh = false;
        if let Some(runtime) = runtime
            && pending.flusher.as_ref().is_none_or(|f| f.is_finished())
        {
            let weak = Arc::downgrade(shared);
            pending.flusher = Some(runtime.spawn(flusher(weak, shared.wake.clone())));
            fresh = true;
        }
        // A fresh flusher is woken even when text was already waiting: the one before it
        // may have gone with its runtime between the wake and the flush, and text left
        // waiting then would never go out.
        if was_empty || fresh {
            shared.wake.notify_one();
        }
    }

    /// Streamed text its publisher already gathered over a stretch of time (an agent's
    /// output, read every 30 ms): sent at once, after the text waiting. Held for the next
    /// frame, it would wake the flusher once per read for nothing: measured, a quarter of
    /// the CPU of supervising an agent that streams 100 events a second.
    pub fn publish_delta_gathered(&self, run_id: &str, text: &str) {
        let mut pending = self.shared.lock();
        self.shared.send_delta_now(&mut pending, run_id, text);
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.shared.tx.subscribe(),
        }
    }

    /// Events published but not yet received by the slowest subscriber. It walks the ring
    /// (O(capacity)): for flow control and diagnostics, not for every event.
    pub fn backlog(&self) -> usize {
        self.shared.tx.len()
    }
}

impl Subscription {
    /// The next delivery; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        match self.rx.recv().await {
            Ok(e) => Some(Delivery::Event(e)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Delivery::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next delivery if one is waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        match self.rx.try_recv() {
            Ok(e) => Some(Delivery::Event(e)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(Delivery::Lagged { missed })
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> Event {
        Event::Recovered { interrupted: i }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged_and_recovers() {
        let bus = EventBus::new(16);
        let mut sub = bus.subscribe();
        for i in 0..40 {
            bus.publish(ev(i));
        }
        assert_eq!(sub.next().await, Some(Delivery::Lagged { missed: 24 }));
        // It resumes from the oldest event still held, in order, with nothing repeated.
        for i in 24..40 {
            assert_eq!(sub.next().await, Some(Delivery::Event(Arc::new(ev(i)))));
        }
        assert_eq!(sub.try_next(), None);
        bus.publish(ev(99));
        assert_eq!(sub.next().await, Some(Delivery::Event(Arc::new(ev(99)))));
    }

    fn delta(run: &str, text: &str) -> Delivery {
        Delivery::Event(Arc::new(Event::ModelDelta {
            run_id: run.into(),
            text: Arc::from(text),
        }))
    }

    #[tokio::test]
    async fn deltas_of_a_run_are_joined_with_every_byte_in_order() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        for (run, text) in [
            ("a", "he"),
            ("b", "x"),
            ("a", "llo"),
            ("b", "y"),
            ("a", "!"),
        ] {
            bus.publish_delta(run, text);
        }
        // Nothing goes out before the flusher's frame has passed...
        assert_eq!(sub.try_next(), None);
        // ...then one event for both runs, in the order the runs first streamed.
        let both = Delivery::Event(Arc::new(Event::ModelDeltas {
            deltas: vec![
                RunText {
                    run_id: "a".into(),
                    text: Arc::from("hello!"),
                },
                RunText {
                    run_id: "b".into(),
                    text: Arc::from("xy"),
                },
            ],
        }));
        assert_eq!(sub.next().await, Some(both));
        assert_eq!(sub.try_next(), None);
        // The flusher keeps working for later text.
        bus.publish_delta("a", " again");
        assert_eq!(sub.next().await, Some(delta("a", " again")));
    }

    #[tokio::test]
    async fn another_event_never_overtakes_the_text_before_it() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        bus.publish_delta("a", "before");
        bus.publish(ev(1));
        bus.publish_delta("a", "after");
        assert_eq!(sub.next().await, Some(delta("a", "before")));
        assert_eq!(sub.next().await, Some(Delivery::Event(Arc::new(ev(1)))));
        assert_eq!(sub.next().await, Some(delta("a", "after")));
    }

    #[tokio::test]
    async fn gathered_text_goes_at_once_after_the_text_waiting() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        bus.publish_delta("b", "waiting");
        bus.publish_delta_gathered("a", "read in one go");
        assert_eq!(sub.try_next(), Some(delta("b", "waiting")));
        assert_eq!(sub.try_next(), Some(delta("a", "read in one go")));
        assert_eq!(sub.try_next(), None);
    }

    #[test]
    fn outside_a_runtime_and_uncoalesced_deltas_go_at_once() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        bus.publish_delta("a", "one");
        assert_eq!(sub.try_next(), Some(delta("a", "one")));
        let bus = EventBus::uncoalesced(64);
        let mut sub = bus.subscribe();
        bus.publish_delta("a", "x");
        bus.publish_delta("a", "y");
        assert_eq!(sub.try_next(), Some(delta("a", "x")));
        assert_eq!(sub.try_next(), Some(delta("a", "y")));
    }

    #[test]
    fn text_left_waiting_by_a_runtime_that_went_is_sent_by_the_next_one() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        // The first runtime starts the flusher, has it woken, and goes before it flushes.
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            bus.publish_delta("a", "stranded ");
            tokio::task::yield_now().await;
        });
        drop(first);
        assert_eq!(sub.try_next(), None, "still waiting: its flusher went");
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = second.block_on(async {
            bus.publish_delta("a", "then more");
            tokio::time::timeout(Duration::from_secs(5), sub.next()).await
        });
        assert_eq!(got, Ok(Some(delta("a", "stranded then more"))));
    }

    #[tokio::test]
    async fn text_waiting_when_the_bus_goes_is_delivered_then_the_stream_ends() {
        let bus = EventBus::new(64);
        let mut sub = bus.subscribe();
        bus.publish_delta("a", "last words");
        drop(bus);
        assert_eq!(sub.next().await, Some(delta("a", "last words")));
        assert_eq!(sub.next().await, None);
    }
}
