//! A deadline for a long transfer that follows its progress instead of its size.
//!
//! A snapshot goes to a follower as a stream of chunks, and a fixed deadline for the whole of it
//! has to guess the link's rate: derived from the size at [`network::MESSAGE_BYTES_PER_MS_MIN`],
//! a link slower than that rate could never deliver a large shard, at any retry. So the stream is
//! wrapped in [`Paced`], which notes when the transport last took a chunk (it takes one only as
//! HTTP/2 flow control lets it send), and [`Pace::stalled`] resolves when the transfer stopped
//! moving:
//!
//! ```text
//!   chunks still to take:  no chunk taken for `idle`                  → stalled
//!   every chunk taken:     no answer within `answer` of the last one   → stalled
//! ```
//!
//! `answer` covers what the receiver does after the last chunk (decode, durable import), which
//! does grow with the size. Time is tokio's, so the simulation controls it.
//!
//! [`network::MESSAGE_BYTES_PER_MS_MIN`]: crate::network::MESSAGE_BYTES_PER_MS_MIN

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;

/// A stream that records when its items are taken; see the module's overview.
pub struct Paced<S> {
    inner: S,
    pace: Pace,
}

/// The progress of a [`Paced`] stream, shared with whoever watches it.
#[derive(Clone)]
pub struct Pace {
    state: Arc<Mutex<Progress>>,
}

#[derive(Clone, Copy)]
struct Progress {
    /// When the last item was taken (or the stream was made).
    last: Instant,
    /// Whether the stream has ended.
    ended: bool,
}

impl<S> Paced<S> {
    /// Wraps `inner`; its clock starts now.
    pub fn new(inner: S) -> (Paced<S>, Pace) {
        let pace =
            Pace { state: Arc::new(Mutex::new(Progress { last: Instant::now(), ended: false })) };
        (Paced { inner, pace: pace.clone() }, pace)
    }
}

impl<S: Stream + Unpin> Stream for Paced<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(item) = &next {
            let mut progress = self.pace.lock();
            progress.last = Instant::now();
            progress.ended = item.is_none();
        }
        next
    }
}

impl Pace {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // The lock guards two plain fields and no code that can panic holds it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves once the stream has stopped moving: no item taken for `idle` while items
    /// remain, or `answer` passed since it ended. Never resolves while items keep being taken.
    /// The watch wakes at the deadlines it computed, so with `answer` shorter than `idle` an
    /// ended stream's stall may be noticed up to `idle` after its last item (the caller's
    /// `answer` is never shorter).
    pub async fn stalled(&self, idle: Duration, answer: Duration) {
        loop {
            let progress = *self.lock();
            let limit = progress.last + if progress.ended { answer } else { idle };
            if Instant::now() >= limit {
                return;
            }
            tokio::time::sleep_until(limit).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    const IDLE: Duration = Duration::from_secs(10);
    const ANSWER: Duration = Duration::from_secs(15);

    /// Takes `items` from a paced stream one per `every` while watching it stall; the time at
    /// which it was declared stalled, if it was, measured from the start.
    async fn run(items: usize, every: Duration, then_wait: Duration) -> Option<Duration> {
        let start = Instant::now();
        let (mut paced, pace) = Paced::new(futures::stream::iter(0..items));
        let consume = async {
            while paced.next().await.is_some() {
                tokio::time::sleep(every).await;
            }
            tokio::time::sleep(then_wait).await;
        };
        tokio::select! {
            biased;
            () = pace.stalled(IDLE, ANSWER) => Some(start.elapsed()),
            () = consume => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_transfer_that_keeps_moving_is_never_stalled() {
        // 100 items at 9 s each: 900 s in all, far past any deadline fixed at the start.
        assert_eq!(run(100, Duration::from_secs(9), Duration::from_secs(2)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transfer_that_stops_taking_items_is_stalled_after_idle() {
        // The consumer takes one item then sleeps: the second is not taken within IDLE.
        assert_eq!(run(5, Duration::from_secs(60), Duration::ZERO).await, Some(IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_later_than_its_allowance_after_the_last_item_is_stalled() {
        // Three items at 1 s: the stream ends at 3 s (the fourth poll), the answer is due by 18 s.
        let stalled = run(3, Duration::from_secs(1), Duration::from_secs(60)).await;
        assert_eq!(stalled, Some(Duration::from_secs(3) + ANSWER));
    }
}
