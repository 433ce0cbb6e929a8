//! Latency summaries: percentiles of a sorted sample, as the JSON reports them.

use serde::Serialize;

/// Percentiles, maximum and mean of one latency sample, in microseconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `sample` (sorted in place). An empty sample gives all zeros.
    pub fn of(sample: &mut [u64]) -> Summary {
        sample.sort_unstable();
        let Some(&max) = sample.last() else {
            return Summary::default();
        };
        let sum: u128 = sample.iter().map(|&v| u128::from(v)).sum();
        Summary {
            p50: percentile(sample, 0.50),
            p90: percentile(sample, 0.90),
            p99: percentile(sample, 0.99),
            p999: percentile(sample, 0.999),
            max,
            mean: sum as f64 / sample.len() as f64,
        }
    }
}

/// The nearest-rank percentile of a sorted, non-empty sample: the smallest value with at
/// least `p` of the sample at or below it.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sample_is_all_zeros() {
        assert_eq!(Summary::of(&mut []), Summary::default());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut sample: Vec<u64> = (1..=1000).rev().collect();
        let s = Summary::of(&mut sample);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p999, s.max),
            (500, 900, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500.5);
    }

    #[test]
    fn one_value() {
        let s = Summary::of(&mut [7]);
        assert_eq!((s.p50, s.p999, s.max, s.mean), (7, 7, 7, 7.0));
    }
}
