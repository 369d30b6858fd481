//! The progress bar: elapsed time and the last second's throughput, on a terminal only.
//!
//! Drawn on standard error, and only when standard output is a terminal: a run whose output is
//! piped or redirected prints its summary and nothing else.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use indicatif::ProgressBar;
use indicatif::ProgressDrawTarget;
use indicatif::ProgressStyle;
use tokio::task::JoinHandle;

use crate::stats::Live;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(250);
/// The window of the throughput shown.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// A running progress bar (or nothing, off a terminal).
pub struct Progress {
    bar: ProgressBar,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing, if standard output is a terminal, for a window of `window`.
    pub fn start(live: Arc<Live>, window: Duration) -> Progress {
        if !std::io::stdout().is_terminal() {
            return Progress { bar: ProgressBar::hidden(), task: None };
        }
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let bar = ProgressBar::with_draw_target(Some(millis), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:20}] {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        let task = tokio::spawn(draw(bar.clone(), live, Instant::now(), millis));
        Progress { bar, task: Some(task) }
    }

    /// Says that the window closed and in-flight operations are being waited for.
    pub fn finishing(&self) {
        self.bar.set_position(self.bar.length().unwrap_or(0));
    }

    /// Stops and erases the bar.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

async fn draw(bar: ProgressBar, live: Arc<Live>, start: Instant, millis: u64) {
    let mut history: VecDeque<(Instant, u64, u64)> = VecDeque::new();
    let mut ticks = tokio::time::interval(TICK);
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let (ops, good) = (Live::get(&live.ops), Live::get(&live.goodput));
        history.push_back((now, ops, good));
        while history.len() > 2 && now - history[0].0 > RATE_WINDOW {
            history.pop_front();
        }
        let (then, ops_then, good_then) = history[0];
        let secs = (now - then).as_secs_f64();
        let rate = |delta: u64| if secs > 0.0 { delta as f64 / secs } else { 0.0 };
        let elapsed = u64::try_from((now - start).as_millis()).unwrap_or(u64::MAX);
        bar.set_position(elapsed.min(millis));
        let draining = if elapsed >= millis { "  draining" } else { "" };
        bar.set_message(format!(
            "{:.0} ops/s  {:.0} good/s  {} aborts  {} err{draining}",
            rate(ops - ops_then),
            rate(good - good_then),
            Live::get(&live.aborts),
            Live::get(&live.errors),
        ));
        bar.tick();
    }
}
