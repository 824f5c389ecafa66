//! The function object of a sync request (protocol §5.4).

use serde_json::{Map, Value, json};

use super::Trigger;
use super::opts::{Concurrency, FunctionOpts, Scope, SingletonMode};
use crate::checkpoint::Checkpoint;
use crate::duration::format_duration;

impl Concurrency {
    pub(super) fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("limit".into(), json!(self.limit));
        if let Some(key) = &self.key {
            obj.insert("key".into(), json!(key));
        }
        let scope = match self.scope {
            Scope::Fn => "fn",
            Scope::Env => "env",
            Scope::Account => "account",
        };
        obj.insert("scope".into(), json!(scope));
        Value::Object(obj)
    }
}

impl FunctionOpts {
    /// The function object of a sync request.
    pub(crate) fn to_json(
        &self,
        app_id: &str,
        step_url: &str,
        client_checkpoint: Option<Checkpoint>,
    ) -> Value {
        let composite = format!("{app_id}-{}", self.id);
        let name = self.name.clone().unwrap_or_else(|| self.id.clone());
        let mut step = json!({
            "id": "step",
            "name": name,
            "runtime": { "type": "http", "url": step_url },
        });
        if let Some(retries) = self.retries {
            step["retries"] = json!({ "attempts": retries });
        }
        let mut f = Map::new();
        f.insert("id".into(), json!(composite));
        f.insert("name".into(), json!(name));
        let triggers: Vec<Value> = self.triggers.iter().map(Trigger::to_json).collect();
        f.insert("triggers".into(), json!(triggers));
        f.insert("steps".into(), json!({ "step": step }));
        let fn_limits: Vec<Value> = self.concurrency.iter().map(Concurrency::to_json).collect();
        if !self.step_concurrency.is_empty() {
            let step_limits: Vec<Value> = self
                .step_concurrency
                .iter()
                .map(Concurrency::to_json)
                .collect();
            f.insert(
                "concurrency".into(),
                json!({ "fn": fn_limits, "step": step_limits }),
            );
        } else if !fn_limits.is_empty() {
            f.insert("concurrency".into(), json!(fn_limits));
        }
        if let Some(t) = &self.throttle {
            let mut v = json!({ "limit": t.limit, "period": format_duration(t.period) });
            insert_opt(&mut v, "burst", t.burst.map(|b| json!(b)));
            insert_opt(&mut v, "key", t.key.as_ref().map(|k| json!(k)));
            f.insert("throttle".into(), v);
        }
        if let Some(r) = &self.rate_limit {
            let mut v = json!({ "limit": r.limit, "period": format_duration(r.period) });
            insert_opt(&mut v, "key", r.key.as_ref().map(|k| json!(k)));
            f.insert("rateLimit".into(), v);
        }
        if let Some(d) = &self.debounce {
            let mut v = json!({ "period": format_duration(d.period) });
            insert_opt(&mut v, "key", d.key.as_ref().map(|k| json!(k)));
            insert_opt(
                &mut v,
                "timeout",
                d.timeout.map(|t| json!(format_duration(t))),
            );
            f.insert("debounce".into(), v);
        }
        if let Some(b) = &self.batch {
            // batchEvents.timeout goes through Go's time.ParseDuration: no d or w units.
            let mut v =
                json!({ "maxSize": b.max_size, "timeout": format!("{}s", b.timeout.as_secs()) });
            insert_opt(&mut v, "key", b.key.as_ref().map(|k| json!(k)));
            insert_opt(&mut v, "if", b.condition.as_ref().map(|k| json!(k)));
            f.insert("batchEvents".into(), v);
        }
        if !self.cancel.is_empty() {
            let cancel: Vec<Value> = self
                .cancel
                .iter()
                .map(|c| {
                    let mut v = json!({ "event": c.event });
                    insert_opt(&mut v, "if", c.condition.as_ref().map(|k| json!(k)));
                    insert_opt(
                        &mut v,
                        "timeout",
                        c.timeout.map(|t| json!(format_duration(t))),
                    );
                    v
                })
                .collect();
            f.insert("cancel".into(), json!(cancel));
        }
        if let Some(run) = &self.priority {
            f.insert("priority".into(), json!({ "run": run }));
        }
        if let Some(key) = &self.idempotency {
            f.insert("idempotency".into(), json!(key));
        }
        if self.timeout_start.is_some() || self.timeout_finish.is_some() {
            let mut v = json!({});
            insert_opt(
                &mut v,
                "start",
                self.timeout_start.map(|t| json!(format_duration(t))),
            );
            insert_opt(
                &mut v,
                "finish",
                self.timeout_finish.map(|t| json!(format_duration(t))),
            );
            f.insert("timeouts".into(), v);
        }
        if let Some((key, mode)) = &self.singleton {
            let mode = match mode {
                SingletonMode::Skip => "skip",
                SingletonMode::Cancel => "cancel",
            };
            let mut v = json!({ "mode": mode });
            insert_opt(&mut v, "key", key.as_ref().map(|k| json!(k)));
            f.insert("singleton".into(), v);
        }
        if let Some(checkpoint) = self.checkpoint.resolve(client_checkpoint) {
            f.insert("checkpoint".into(), checkpoint.to_json());
        }
        Value::Object(f)
    }
}

fn insert_opt(target: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Some(obj)) = (value, target.as_object_mut()) {
        obj.insert(key.to_owned(), value);
    }
}
