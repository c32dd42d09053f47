//! The one back-off policy of ferry: every retry in the runtime and in the sinks waits
//! through it, so a policy is a value ([`Backoff`]) that says what it is — first wait,
//! growth, cap, jitter, retry limit, deadline — instead of a loop written again per sink.
//!
//! A [`Backoff`] is started once per failing operation ([`Backoff::start`]); the
//! [`Retry`] it gives answers, after each failure, whether to try again and after which
//! wait ([`Retry::next_wait`]), and sleeps that wait unless stopped ([`sleep_unless`]). The
//! caller keeps its own loop, because the loops differ in what they do between tries
//! (the runtime re-decodes what is left of a batch, the HTTP sink refreshes a token and
//! hands a request back to the runtime after a while, the Pub/Sub sink republishes one
//! message in a task of its own), but none computes a wait of its own.
//!
//! Time is tokio's ([`tokio::time::Instant`], [`tokio::time::sleep`]), so tests run the
//! policies under paused time.
//!
//! Why not a crate: `backoff` is unmaintained; `backon`'s jitter adds up to a whole
//! delay (or its minimum, depending on the version), its total-delay limit adds up the
//! waits rather than the time since the first failure, and its `Retryable` wants the
//! operation as one closure, which none of the loops above is; `tokio-retry`'s jitter
//! draws the whole wait at random and it has no deadline. None can state the documented
//! policies unchanged (Kafka Connect's `errors.retry.timeout`, ±20 % around a wait,
//! `bigQueryRetryWait` + 0–20 %, Google's publisher `totalTimeout`), and the arithmetic is
//! a few lines.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How a wait is spread so that tasks that failed together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The wait exactly.
    None,
    /// Up to this fraction more or less (0.2: 80–120 % of the wait).
    Around(f64),
    /// Up to this fraction more (0.2: 100–120 %; BigQuery's `bigQueryRetryWait`).
    Above(f64),
}

/// When a retried operation stops being retried, measured from [`Backoff::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// No retry once this long has passed (Kafka Connect's `errors.retry.timeout`): a wait
    /// that starts before it is slept whole.
    After(Duration),
    /// No wait that would end at or after this long (Google's publisher `totalTimeout`:
    /// a retry that could not start in time is not waited for). Compared with the wait
    /// before jitter.
    NoWaitPast(Duration),
}

/// A back-off policy: waits from `first`, multiplied by `factor` after each retry up to
/// `max`, spread by `jitter`, for at most `retries` retries and until `deadline`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    first: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
    retries: Option<u32>,
    deadline: Option<Deadline>,
}

impl Backoff {
    /// Waits doubling from `first` up to `max` (at least `first`), no jitter, no limit.
    pub fn exponential(first: Duration, max: Duration) -> Self {
        Self {
            first,
            factor: 2.0,
            max: max.max(first),
            jitter: Jitter::None,
            retries: None,
            deadline: None,
        }
    }

    /// The same wait every time, no jitter, no limit.
    pub fn constant(wait: Duration) -> Self {
        Self::exponential(wait, wait).factor(1.0)
    }

    /// What each wait is multiplied by for the next (at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// At most this many retries (attempts after the first).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Starts retrying an operation that is about to be tried for the first time (the
    /// deadline counts from now).
    pub fn start(&self) -> Retry {
        self.start_after(0)
    }

    /// As [`Backoff::start`], with `done` retries already made (in earlier deliveries of
    /// the same request): they count against the limit and the waits go on from there.
    pub fn start_after(&self, done: u32) -> Retry {
        let mut base = self.first;
        for _ in 0..done {
            let next = base.mul_f64(self.factor).min(self.max);
            if next == base {
                break;
            }
            base = next;
        }
        Retry {
            policy: self.clone(),
            base,
            done,
            started: Instant::now(),
        }
    }
}

/// Why [`Retry::next_wait`] says not to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The policy's retries are all made.
    Retries,
    /// The policy's deadline has come.
    Deadline,
}

/// One failing operation's retries under a [`Backoff`].
#[derive(Debug, Clone)]
pub struct Retry {
    policy: Backoff,
    /// The next wait before jitter.
    base: Duration,
    done: u32,
    started: Instant,
}

impl Retry {
    /// After a failure: the wait before the next try, counting it as a retry, or why
    /// there is none. The retry limit is checked before the deadline.
    pub fn next_wait(&mut self) -> Result<Duration, GiveUp> {
        let p = &self.policy;
        if p.retries.is_some_and(|r| self.done >= r) {
            return Err(GiveUp::Retries);
        }
        let elapsed = self.started.elapsed();
        match p.deadline {
            Some(Deadline::After(d)) if elapsed >= d => return Err(GiveUp::Deadline),
            Some(Deadline::NoWaitPast(d)) if elapsed + self.base >= d => {
                return Err(GiveUp::Deadline);
            }
            _ => {}
        }
        let wait = match p.jitter {
            Jitter::None => self.base,
            Jitter::Around(f) => self.base.mul_f64(1.0 - f + fastrand::f64() * 2.0 * f),
            Jitter::Above(f) => self.base.mul_f64(1.0 + fastrand::f64() * f),
        };
        self.base = self.base.mul_f64(p.factor).min(p.max);
        self.done += 1;
        Ok(wait)
    }

    /// Whether the policy's deadline has come (`Deadline::After`); false without one.
    pub fn expired(&self) -> bool {
        match self.policy.deadline {
            Some(Deadline::After(d)) | Some(Deadline::NoWaitPast(d)) => self.started.elapsed() >= d,
            None => false,
        }
    }

    /// Retries made so far (those before [`Backoff::start_after`] included).
    pub fn retries(&self) -> u32 {
        self.done
    }

    /// After a failure: waits before the next try and returns `Ok(true)`, or returns
    /// `Ok(false)` at once if `stop` completes first; `Err` if there is no next try.
    pub async fn wait(&mut self, stop: impl Future) -> Result<bool, GiveUp> {
        let wait = self.next_wait()?;
        Ok(sleep_unless(wait, stop).await)
    }
}

/// Sleeps `wait` unless `stop` completes first: true if the whole wait was slept.
pub async fn sleep_unless(wait: Duration, stop: impl Future) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn waits(r: &mut Retry, n: usize) -> Vec<Duration> {
        (0..n).map(|_| r.next_wait().unwrap()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn waits_grow_by_the_factor_up_to_the_cap() {
        let mut r = Backoff::exponential(100 * MS, 1000 * MS).start();
        assert_eq!(
            waits(&mut r, 6),
            [100, 200, 400, 800, 1000, 1000].map(|m| m * MS)
        );
        // Google's publisher: 100 ms × 4 up to 60 s.
        let mut r = Backoff::exponential(100 * MS, 60_000 * MS)
            .factor(4.0)
            .start();
        assert_eq!(
            waits(&mut r, 6),
            [100, 400, 1600, 6400, 25_600, 60_000].map(|m| m * MS)
        );
        // A cap below the first wait is the first wait (errors.retry.delay.max.ms=0).
        let mut r = Backoff::exponential(100 * MS, Duration::ZERO).start();
        assert_eq!(waits(&mut r, 3), [100 * MS; 3]);
        let mut r = Backoff::constant(3000 * MS).start();
        assert_eq!(waits(&mut r, 3), [3000 * MS; 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_in_its_band_and_varies() {
        let around = Backoff::constant(1000 * MS).jitter(Jitter::Around(0.2));
        let above = Backoff::constant(1000 * MS).jitter(Jitter::Above(0.2));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let w = around.start().next_wait().unwrap();
            assert!((800 * MS..=1200 * MS).contains(&w), "{w:?}");
            seen.insert(w);
            let w = above.start().next_wait().unwrap();
            assert!((1000 * MS..=1200 * MS).contains(&w), "{w:?}");
        }
        assert!(seen.len() > 10, "jitter should vary: {seen:?}");
        // Jitter spreads the capped wait; the next base is not jittered.
        let mut r = Backoff::exponential(100 * MS, 200 * MS)
            .jitter(Jitter::Around(0.2))
            .start();
        for _ in 0..10 {
            r.next_wait().unwrap();
        }
        let w = r.next_wait().unwrap();
        assert!((160 * MS..=240 * MS).contains(&w), "{w:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_counted_and_limited() {
        let policy = Backoff::constant(10 * MS).retries(2);
        let mut r = policy.start();
        assert_eq!(r.next_wait(), Ok(10 * MS));
        assert_eq!(r.next_wait(), Ok(10 * MS));
        assert_eq!(r.retries(), 2);
        assert_eq!(r.next_wait(), Err(GiveUp::Retries));
        // Retries made in earlier deliveries count, and the waits go on from there.
        let mut r = policy.start_after(2);
        assert_eq!(r.next_wait(), Err(GiveUp::Retries));
        let mut r = Backoff::exponential(100 * MS, 1000 * MS).start_after(3);
        assert_eq!(r.next_wait(), Ok(800 * MS));
        assert_eq!(r.retries(), 4);
        // The retry limit is checked before the deadline.
        let mut r = Backoff::constant(10 * MS)
            .retries(0)
            .deadline(Deadline::After(Duration::ZERO))
            .start();
        assert_eq!(r.next_wait(), Err(GiveUp::Retries));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_after_lets_the_last_wait_run_over() {
        let mut r = Backoff::exponential(100 * MS, 60_000 * MS)
            .deadline(Deadline::After(1000 * MS))
            .start();
        assert!(!r.expired());
        let mut slept = Duration::ZERO;
        let gave_up = loop {
            match r.wait(std::future::pending::<()>()).await {
                Ok(true) => slept = r.started.elapsed(),
                Ok(false) => unreachable!("never stopped"),
                Err(g) => break g,
            }
        };
        assert_eq!(gave_up, GiveUp::Deadline);
        // 100 + 200 + 400 = 700 ms < 1 s, so an 800 ms wait starts and runs to 1.5 s.
        assert_eq!(slept, 1500 * MS);
        assert_eq!(r.retries(), 4);
        assert!(r.expired());
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_no_wait_past_refuses_a_wait_that_would_end_late() {
        let mut r = Backoff::exponential(100 * MS, 60_000 * MS)
            .factor(4.0)
            .deadline(Deadline::NoWaitPast(2000 * MS))
            .start();
        // 100, then 400 (ends at 500), then 1600 would end at 2100: refused.
        assert_eq!(r.wait(std::future::pending::<()>()).await, Ok(true));
        assert_eq!(r.wait(std::future::pending::<()>()).await, Ok(true));
        assert_eq!(r.started.elapsed(), 500 * MS);
        assert_eq!(r.next_wait(), Err(GiveUp::Deadline));
        assert!(!r.expired());
        // Time spent trying counts too.
        tokio::time::advance(1500 * MS).await;
        assert!(r.expired());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_cuts_the_wait_short() {
        let mut r = Backoff::constant(60_000 * MS).start();
        let start = Instant::now();
        let stopped = r.wait(tokio::time::sleep(250 * MS)).await;
        assert_eq!(stopped, Ok(false));
        assert_eq!(start.elapsed(), 250 * MS);
        // An already cancelled token stops at once.
        let token = std::future::ready(());
        assert!(!sleep_unless(60_000 * MS, token).await);
        assert_eq!(start.elapsed(), 250 * MS);
        assert!(sleep_unless(10 * MS, std::future::pending::<()>()).await);
        assert_eq!(start.elapsed(), 260 * MS);
    }
}
