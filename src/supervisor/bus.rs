//! The event bus: a bounded broadcast. A subscriber that falls more than the capacity
//! behind is not allowed to slow the supervisor down; it is told exactly how many events it
//! missed (`Lagged`) and carries on from the oldest event still held.

use super::Event;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
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

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx }
    }

    /// Sends to every subscriber; with none, the event is simply not kept.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Sends an event that is already shared.
    pub fn publish_shared(&self, event: Arc<Event>) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Events published but not yet received by the slowest subscriber. It walks the ring
    /// (O(capacity)): for flow control and diagnostics, not for every event.
    pub fn backlog(&self) -> usize {
        self.tx.len()
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
}
