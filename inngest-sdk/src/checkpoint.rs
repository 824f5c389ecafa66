//! Checkpointing (Inngest's SDK spec §10, async flow): run many steps in one invocation.
//!
//! Without it, every step costs a round trip through Inngest: the SDK answers 206 after each
//! step and waits for the next call, which replays the run's state. With it, a step's result
//! is sent to Inngest's checkpoint API and the function goes on in the same request; only a
//! step Inngest must schedule (a sleep, a wait, an invoke, parallel steps, a retry) or the end
//! of the function answers the call. If the checkpoint API cannot be reached, the buffered
//! results are answered in the 206 as without checkpointing, so nothing is lost.
//!
//! Opt in for every function with [`crate::Config::with_checkpoint`], or per function with
//! [`crate::FunctionOpts::with_checkpoint`] (which also opts one function out of the client's
//! setting with [`crate::FunctionOpts::without_checkpoint`]).

use std::time::Duration;

use serde_json::{Value, json};

use crate::duration::format_duration;

/// When buffered step results are sent, and how long one invocation may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Checkpoint {
    /// Send once this many step results are buffered (0 and 1 both mean after every step).
    pub batch_steps: u32,
    /// Send buffered results once the oldest has waited this long (checked between steps).
    pub batch_interval: Option<Duration>,
    /// Answer the call once the invocation has run this long, leaving the next step to a
    /// new call: for hosts that limit a request's duration (serverless).
    pub max_runtime: Option<Duration>,
}

impl Checkpoint {
    /// After every step: the most durable (the spec's default).
    pub fn safe() -> Self {
        Self {
            batch_steps: 0,
            batch_interval: None,
            max_runtime: None,
        }
    }

    /// After 3 steps or 3 seconds, whichever comes first.
    pub fn blended() -> Self {
        Self {
            batch_steps: 3,
            batch_interval: Some(Duration::from_secs(3)),
            max_runtime: None,
        }
    }

    /// Up to 1000 steps per send: the fastest; a crash loses the unsent results, whose steps
    /// then run again.
    pub fn performant() -> Self {
        Self {
            batch_steps: 1000,
            batch_interval: None,
            max_runtime: None,
        }
    }

    /// Sets [`Self::max_runtime`].
    pub fn with_max_runtime(mut self, max_runtime: Duration) -> Self {
        self.max_runtime = Some(max_runtime);
        self
    }

    /// How many results make a send.
    pub(crate) fn batch_size(&self) -> usize {
        usize::try_from(self.batch_steps.max(1)).unwrap_or(usize::MAX)
    }

    /// The `checkpoint` object of the function's sync configuration (spec §10.1.1).
    pub(crate) fn to_json(self) -> Value {
        let duration = |d: Option<Duration>| format_duration(d.unwrap_or(Duration::ZERO));
        json!({
            "batch_steps": self.batch_steps,
            "batch_interval": duration(self.batch_interval),
            "max_runtime": duration(self.max_runtime),
        })
    }
}

/// A function's own checkpoint setting, over the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CheckpointSetting {
    /// The client's setting.
    #[default]
    Inherit,
    /// This configuration.
    On(Checkpoint),
    /// Never, whatever the client says.
    Off,
}

impl CheckpointSetting {
    /// The configuration in effect, given the client's.
    pub(crate) fn resolve(self, client: Option<Checkpoint>) -> Option<Checkpoint> {
        match self {
            Self::Inherit => client,
            Self::On(checkpoint) => Some(checkpoint),
            Self::Off => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_sync_as_the_spec_shows() {
        assert_eq!(
            Checkpoint::safe().to_json(),
            json!({"batch_steps": 0, "batch_interval": "0s", "max_runtime": "0s"})
        );
        assert_eq!(
            Checkpoint::blended().to_json(),
            json!({"batch_steps": 3, "batch_interval": "3s", "max_runtime": "0s"})
        );
        assert_eq!(
            Checkpoint::performant()
                .with_max_runtime(Duration::from_secs(50))
                .to_json(),
            json!({"batch_steps": 1000, "batch_interval": "0s", "max_runtime": "50s"})
        );
        assert_eq!(Checkpoint::safe().batch_size(), 1);
    }

    #[test]
    fn a_function_setting_overrides_the_client() {
        let client = Some(Checkpoint::safe());
        assert_eq!(CheckpointSetting::Inherit.resolve(client), client);
        assert_eq!(CheckpointSetting::Off.resolve(client), None);
        assert_eq!(
            CheckpointSetting::On(Checkpoint::performant()).resolve(None),
            Some(Checkpoint::performant())
        );
    }
}
