//! [`HistogramError`]: one variant per rule a histogram configuration
//! breaks.

use std::fmt;

/// Why a histogram configuration was rejected: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramError {
    /// The lowest discernible value must be at least 1.
    LowestIsZero,
    /// The highest trackable value must be at least twice the lowest.
    HighestBelowTwiceLowest {
        /// The lowest discernible value asked for.
        lowest: u64,
        /// The highest trackable value asked for.
        highest: u64,
    },
    /// Significant figures must be 1 to 5.
    SignificantFiguresOutOfRange(u8),
    /// The lowest value is so large that the requested precision cannot be
    /// represented in 64 bits.
    LowestTooLargeForPrecision {
        /// The lowest discernible value asked for.
        lowest: u64,
        /// The significant figures asked for.
        significant_figures: u8,
    },
    /// The scale of recorded integers (see
    /// [`HistogramBuilder::scale`](super::HistogramBuilder::scale)) must be
    /// positive and finite.
    InvalidScale,
}

impl fmt::Display for HistogramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistogramError::LowestIsZero => {
                f.write_str("lowest discernible value must be at least 1")
            }
            HistogramError::HighestBelowTwiceLowest { lowest, highest } => write!(
                f,
                "highest trackable value {highest} must be at least twice the lowest {lowest}"
            ),
            HistogramError::SignificantFiguresOutOfRange(n) => {
                write!(f, "significant figures must be 1 to 5, not {n}")
            }
            HistogramError::LowestTooLargeForPrecision {
                lowest,
                significant_figures,
            } => write!(
                f,
                "lowest value {lowest} is too large for {significant_figures} significant figures"
            ),
            HistogramError::InvalidScale => f.write_str("the scale must be positive and finite"),
        }
    }
}

impl std::error::Error for HistogramError {}
