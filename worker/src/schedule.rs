//! A fixed-interval schedule for apalis-cron, counted from the moment it is asked, so a
//! run that takes longer than the interval never leaves a tick in the past.

use std::time::Duration;

use apalis_cron::Schedule;
use apalis_cron::Tick;
use chrono::Utc;

/// Every `.0`, starting one interval from now.
#[derive(Clone, Copy, Debug)]
pub struct Every(pub Duration);

impl Schedule<Utc> for Every {
    fn next_tick(&mut self, _: &Utc) -> Option<Tick<Utc>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(Tick::new((now + self.0.max(Duration::from_secs(1))).as_secs()))
    }
}
