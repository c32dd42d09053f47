//! Flow control: `maxOutstandingRequestBytes` and `maxOutstandingMessages` bound what the
//! connector has published and not yet had acknowledged. One budget is shared by all of a
//! connector's tasks (a busy task may use what idle ones do not), and a permit is returned
//! the moment its publish is acknowledged, whichever task is running then.

use std::sync::Arc;

use ferry_connector_api::TaskError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connector's outstanding-publish budget.
#[derive(Debug, Clone)]
pub(crate) struct FlowControl {
    bytes: Arc<Semaphore>,
    messages: Arc<Semaphore>,
    /// The whole byte budget, as the most one message can take: a message larger than
    /// the budget waits until nothing else is outstanding, then goes alone.
    max_bytes: u32,
}

/// One message's share of the budget, returned when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    _bytes: OwnedSemaphorePermit,
    _message: OwnedSemaphorePermit,
}

impl FlowControl {
    pub(crate) fn new(max_bytes: u64, max_messages: u64) -> Self {
        let cap = |n: u64| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(Semaphore::MAX_PERMITS)
        };
        let bytes = cap(max_bytes);
        Self {
            bytes: Arc::new(Semaphore::new(bytes)),
            messages: Arc::new(Semaphore::new(cap(max_messages))),
            max_bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        }
    }

    fn share(&self, bytes: usize) -> u32 {
        u32::try_from(bytes).unwrap_or(u32::MAX).min(self.max_bytes)
    }

    /// Waits until `bytes` more may be outstanding. Cancel-safe: dropping the future gives
    /// back whatever it had taken.
    pub(crate) async fn acquire(&self, bytes: usize) -> Result<Permit, TaskError> {
        let closed = |_| TaskError::fatal("Pub/Sub flow control was shut down");
        let bytes = self
            .bytes
            .clone()
            .acquire_many_owned(self.share(bytes))
            .await
            .map_err(closed)?;
        let message = self
            .messages
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok(Permit {
            _bytes: bytes,
            _message: message,
        })
    }

    /// Like [`acquire`](Self::acquire), without waiting.
    pub(crate) fn try_acquire(&self, bytes: usize) -> Option<Permit> {
        let bytes = self
            .bytes
            .clone()
            .try_acquire_many_owned(self.share(bytes))
            .ok()?;
        let message = self.messages.clone().try_acquire_owned().ok()?;
        Some(Permit {
            _bytes: bytes,
            _message: message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounds_bytes_and_messages_and_returns_permits_on_drop() {
        let flow = FlowControl::new(100, 3);
        let a = flow.acquire(60).await.unwrap();
        assert!(flow.try_acquire(50).is_none(), "60 + 50 bytes exceed 100");
        let b = flow.try_acquire(40).unwrap();
        drop(a);
        let c = flow.try_acquire(30).unwrap();
        let d = flow.try_acquire(1).unwrap();
        assert!(flow.try_acquire(1).is_none(), "three messages outstanding");
        drop((b, c, d));
        assert!(flow.try_acquire(100).is_some());
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_goes_alone() {
        let flow = FlowControl::new(100, 10);
        let small = flow.acquire(10).await.unwrap();
        assert!(flow.try_acquire(11_000_000).is_none());
        drop(small);
        let big = flow.try_acquire(11_000_000).unwrap();
        assert!(flow.try_acquire(1).is_none());
        drop(big);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_a_permit_is_dropped() {
        let flow = FlowControl::new(100, 10);
        let held = flow.acquire(100).await.unwrap();
        let waiter = tokio::spawn({
            let flow = flow.clone();
            async move { flow.acquire(50).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken within 5 s")
            .unwrap()
            .unwrap();
    }
}
