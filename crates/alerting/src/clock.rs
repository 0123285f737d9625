//! Where the subsystem gets the wall-clock time from.
//!
//! Timers (group_wait, group_interval, maintenance) always run on tokio's clock; timestamps
//! (alert times, silence states, the notification log) come from a [`Clock`]. In production
//! that is [`SystemClock`]; tests use [`TokioClock`], which derives wall time from tokio's
//! (pausable) clock so a test on paused time sees both move together, exactly and fast.

use std::fmt;

use jiff::Timestamp;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Wall time that advances with tokio's clock: `start` plus the tokio time elapsed since the
/// clock was made. Under `#[tokio::test(start_paused = true)]` it moves only when tokio's
/// paused clock does.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    wall: Timestamp,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: Timestamp) -> TokioClock {
        TokioClock {
            wall: start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        crate::types::add_duration(self.wall, self.origin.elapsed())
    }
}
