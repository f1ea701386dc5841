//! The background pusher's [`Sink`]: every attempt encodes the registry
//! afresh and `PUT`s it (nothing is kept between attempts: the
//! Pushgateway holds only the latest state anyway).

use super::{refused, CONTENT_TYPE};
use crate::export::push::{Failure, Method, Outcome, Sink, Transport};
use crate::export::{text, Format};
use crate::registry::Registry;

pub(super) struct PushgatewaySink {
    pub(super) transport: Transport,
    /// The last body, kept for its capacity.
    pub(super) body: String,
    /// Bytes refused since the last `take_dropped`.
    pub(super) dropped: u64,
}

impl Sink for PushgatewaySink {
    const NAME: &'static str = "pushgateway";

    fn deliver(&mut self, registry: &Registry) -> Outcome {
        self.body.clear();
        // Writing into a String cannot fail.
        let _ = text::encode(registry, Format::Prometheus, &mut self.body);
        match self.transport.send(
            Method::Put,
            None,
            &[("Content-Type", CONTENT_TYPE.as_bytes())],
            self.body.as_bytes(),
            refused,
        ) {
            Ok(()) => Outcome::Delivered,
            Err(Failure::Refused(e)) => {
                self.dropped += self.body.len() as u64;
                Outcome::Rejected(e)
            }
            Err(Failure::Sink(e)) => Outcome::Failed(e),
        }
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}
