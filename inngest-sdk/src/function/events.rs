//! The batch a run was called with, kept as the request's text until the body asks for it.

use std::fmt;
use std::marker::PhantomData;

use bytestring::ByteString;
use serde::de::DeserializeOwned;

use super::decode::decode_event;
use crate::error::Error;
use crate::event::Event;
use crate::step::range_within;

/// Every event of the run's batch, in order: the trigger event alone unless the function
/// batches. [`Ctx::event`](super::Ctx::event) is the first of them, already decoded.
///
/// The batch is decoded only when [`decode`](Self::decode) is called, so a function that reads
/// only `ctx.event` decodes its event once, and a batch event that does not match `E` fails
/// only a body that asks for it.
pub struct Events<E> {
    texts: Vec<ByteString>,
    event_type: PhantomData<fn() -> E>,
}

impl<E> Events<E> {
    /// Keeps each event's text: a slice of `body` (no copy) when it is one, else a copy (the
    /// run state fetched from the API, or events a middleware transformed).
    pub(crate) fn keep(body: &ByteString, events: &[&str]) -> Self {
        let texts = events
            .iter()
            .map(|&text| {
                match range_within(body.as_bytes(), text.as_bytes())
                    .and_then(|range| body.get(range))
                {
                    Some(inside) => body.slice_ref(inside),
                    None => ByteString::from(text),
                }
            })
            .collect();
        Self {
            texts,
            event_type: PhantomData,
        }
    }

    /// How many events the batch holds (at least one).
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether the batch is empty; a run always has its trigger event, so it never is.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

impl<E: DeserializeOwned> Events<E> {
    /// Decodes every event of the batch into `Event<E>`, as `ctx.event` was (Inngest's
    /// metadata removed from `data`). Each call decodes again.
    ///
    /// # Errors
    /// A non-retriable `EventDecodeError` naming the event's index and the path that does not
    /// match `E`: the same bytes would fail on every retry.
    pub fn decode(&self) -> Result<Vec<Event<E>>, Error> {
        self.texts
            .iter()
            .enumerate()
            .map(|(index, text)| decode_event(text, || format!("event {index} of the batch")))
            .collect()
    }
}

impl<E> fmt::Debug for Events<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("len", &self.texts.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_inside_the_body_are_shared_and_others_copied() {
        let body = ByteString::from_static(r#"{"events":[{"name":"a","data":{}}]}"#);
        let inside = &body[11..33];
        let outside = r#"{"name":"b","data":{}}"#.to_owned();
        let events = Events::<serde_json::Value>::keep(&body, &[inside, &outside]);

        assert_eq!(events.texts[0].as_ptr(), body[11..].as_ptr(), "no copy");
        let names: Vec<_> = events
            .decode()
            .expect("both decode")
            .into_iter()
            .map(|event| event.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
