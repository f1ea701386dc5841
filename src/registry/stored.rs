//! [`AnyFamily`]: a family of any kind, as the registry stores it, and
//! [`Stored`], how each kind is wrapped and made.

use super::error::MetricKind;
use super::family::{Common, Family, Metric};
use crate::counter::arena::Arena;
use crate::primitive::Arc;
use crate::{Counter, Gauge, Histogram, Timer};

/// A family of any kind, as the registry stores it.
#[derive(Clone, Debug)]
pub(crate) enum AnyFamily {
    Counter(Family<Counter>),
    Gauge(Family<Gauge>),
    Histogram(Family<Histogram>),
    Timer(Family<Timer>),
}

impl AnyFamily {
    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            AnyFamily::Counter(_) => MetricKind::Counter,
            AnyFamily::Gauge(_) => MetricKind::Gauge,
            AnyFamily::Histogram(_) => MetricKind::Histogram,
            AnyFamily::Timer(_) => MetricKind::Timer,
        }
    }

    pub(super) fn label_names(&self) -> &[String] {
        self.common().label_names
    }

    pub(super) fn name(&self) -> &str {
        self.common().name
    }

    pub(super) fn help(&self) -> &str {
        self.common().help
    }

    pub(super) fn unit(&self) -> Option<&str> {
        self.common().unit
    }

    pub(super) fn overflowed(&self) -> u64 {
        self.common().overflowed
    }

    /// What every kind of family has.
    fn common(&self) -> Common<'_> {
        match self {
            AnyFamily::Counter(f) => f.common(),
            AnyFamily::Gauge(f) => f.common(),
            AnyFamily::Histogram(f) => f.common(),
            AnyFamily::Timer(f) => f.common(),
        }
    }
}

/// How a family makes its series.
pub(crate) type Make<M> = Box<dyn Fn() -> M + Send + Sync>;

/// Converts between a typed family and [`AnyFamily`].
pub(crate) trait Stored: Metric + Sized {
    fn wrap(family: Family<Self>) -> AnyFamily;
    fn unwrap(family: &AnyFamily) -> Option<&Family<Self>>;
    fn make(arena: &Arc<Arena>) -> Make<Self>;
}

macro_rules! stored {
    ($ty:ident) => {
        impl Stored for $ty {
            fn wrap(family: Family<Self>) -> AnyFamily {
                AnyFamily::$ty(family)
            }
            fn unwrap(family: &AnyFamily) -> Option<&Family<Self>> {
                match family {
                    AnyFamily::$ty(f) => Some(f),
                    _ => None,
                }
            }
            fn make(_: &Arc<Arena>) -> Make<Self> {
                Box::new($ty::new)
            }
        }
    };
}

impl Stored for Counter {
    fn wrap(family: Family<Self>) -> AnyFamily {
        AnyFamily::Counter(family)
    }
    fn unwrap(family: &AnyFamily) -> Option<&Family<Self>> {
        match family {
            AnyFamily::Counter(f) => Some(f),
            _ => None,
        }
    }
    /// Counter series live in the registry's per-CPU arena.
    fn make(arena: &Arc<Arena>) -> Make<Self> {
        let arena = Arc::clone(arena);
        Box::new(move || arena.counter())
    }
}
stored!(Gauge);
stored!(Histogram);
stored!(Timer);
