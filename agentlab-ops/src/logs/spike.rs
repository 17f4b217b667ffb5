//! Spikes in per-minute counts: each minute against the trailing window before it, by a robust
//! z-score, `0.6745 × (count − median) / MAD` (Iglewicz and Hoaglin), so one noisy minute in
//! the baseline does not hide a burst and a flat zero baseline still lets a burst stand out (the
//! MAD is floored at 1).

/// Median of a non-empty slice (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One minute that stands out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeAt {
    /// Index of the minute in the series.
    pub index: usize,
    /// The baseline's median.
    pub median: f64,
    /// The robust z-score.
    pub z: f64,
}

/// The minutes of `counts` (one per minute, gaps as zeros) whose robust z-score against the
/// `window` minutes before them is above `threshold`, with at least `min_count` events.
pub fn spikes(counts: &[u64], window: usize, threshold: f64, min_count: u64) -> Vec<SpikeAt> {
    let mut out = Vec::new();
    for i in 1..counts.len() {
        if counts[i] < min_count {
            continue;
        }
        let from = i.saturating_sub(window);
        let mut base: Vec<f64> = counts[from..i].iter().map(|&c| c as f64).collect();
        let med = median(&mut base);
        let mut dev: Vec<f64> = base.iter().map(|c| (c - med).abs()).collect();
        let mad = median(&mut dev).max(1.0);
        let z = 0.6745 * (counts[i] as f64 - med) / mad;
        if z > threshold {
            out.push(SpikeAt {
                index: i,
                median: med,
                z,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_stands_out_and_noise_does_not() {
        let mut c = vec![1u64, 0, 2, 1, 1, 3, 0, 1, 2, 1, 1, 0, 2, 1];
        c.extend([40, 55, 50]);
        let s = spikes(&c, 10, 5.0, 5);
        assert_eq!(s.first().map(|s| s.index), Some(14), "{s:?}");
        assert!(spikes(&[1, 2, 1, 3, 2, 1, 2, 3, 1, 2], 10, 5.0, 5).is_empty());
        assert!(spikes(&[], 10, 5.0, 1).is_empty());
        assert!(spikes(&[9], 10, 5.0, 1).is_empty());
    }
}
