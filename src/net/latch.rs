//! Thread-local signals: [`Latch`], set once, every waiter wakes; [`Notify`], re-armable. The worker uses one to tell
//! its accept loop and idle connections that it is draining, and one to learn that its last
//! connection closed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub struct Latch {
    set: Cell<bool>,
    next: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Latch {
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Sets the latch and wakes every waiter. Idempotent.
    pub fn set(&self) {
        if self.set.replace(true) {
            return;
        }
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, w) in waiters {
            w.wake();
        }
    }

    /// Completes once the latch is set. Dropping the future deregisters it.
    pub fn wait(&self) -> Wait<'_> {
        let id = self.next.get();
        self.next.set(id + 1);
        Wait { latch: self, id }
    }
}

#[derive(Debug)]
pub struct Wait<'a> {
    latch: &'a Latch,
    id: u64,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.set.get() {
            return Poll::Ready(());
        }
        self.latch
            .waiters
            .borrow_mut()
            .insert(self.id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.latch.waiters.try_borrow_mut() {
            w.remove(&self.id);
        }
    }
}

/// A thread-local, re-armable signal: [`Notify::notified`] completes at the next
/// [`Notify::notify_all`] after it was created. A worker uses one to wake the requests that
/// wait for allowance when its control ring has been read.
#[derive(Debug, Default)]
pub struct Notify {
    epoch: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.epoch.set(self.epoch.get().wrapping_add(1));
        for w in std::mem::take(&mut *self.waiters.borrow_mut()) {
            w.wake();
        }
    }

    /// Completes at the first `notify_all` after this call (even if it comes before the
    /// future is first polled).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            epoch: self.epoch.get(),
        }
    }
}

#[derive(Debug)]
pub struct Notified<'a> {
    notify: &'a Notify,
    epoch: u64,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.epoch.get() != self.epoch {
            return Poll::Ready(());
        }
        let mut waiters = self.notify.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_waiters_and_deregisters_dropped_ones() {
        let latch = Latch::default();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        // A waiter that was polled and then dropped leaves nothing behind.
        {
            let mut dropped = latch.wait();
            assert_eq!(Pin::new(&mut dropped).poll(&mut cx), Poll::Pending);
            assert_eq!(latch.waiters.borrow().len(), 1);
        }
        assert!(latch.waiters.borrow().is_empty());
        let mut a = latch.wait();
        let mut b = latch.wait();
        assert_eq!(Pin::new(&mut a).poll(&mut cx), Poll::Pending);
        assert_eq!(Pin::new(&mut b).poll(&mut cx), Poll::Pending);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        latch.set();
        latch.set();
        // Both woken, once each; both complete; a late waiter completes at once.
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(Pin::new(&mut a).poll(&mut cx), Poll::Ready(()));
        assert_eq!(Pin::new(&mut b).poll(&mut cx), Poll::Ready(()));
        assert_eq!(Pin::new(&mut latch.wait()).poll(&mut cx), Poll::Ready(()));
        assert!(latch.is_set());
    }

    #[test]
    fn notify_wakes_those_waiting_since_before_it() {
        let notify = Notify::default();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut early = notify.notified();
        assert_eq!(Pin::new(&mut early).poll(&mut cx), Poll::Pending);
        // Created before the notification, first polled after it: still completes.
        let mut unpolled = notify.notified();
        notify.notify_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut early).poll(&mut cx), Poll::Ready(()));
        assert_eq!(Pin::new(&mut unpolled).poll(&mut cx), Poll::Ready(()));
        // A later waiter waits for the next one.
        let mut late = notify.notified();
        assert_eq!(Pin::new(&mut late).poll(&mut cx), Poll::Pending);
        notify.notify_all();
        assert_eq!(Pin::new(&mut late).poll(&mut cx), Poll::Ready(()));
    }
}
