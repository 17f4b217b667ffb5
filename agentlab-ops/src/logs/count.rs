//! Counting keys with a cap on memory: exact while fewer than `cap` distinct keys are seen;
//! beyond that the least frequent half is folded into `dropped` and the counts become lower
//! bounds (`approximate`). Hand-written because the heavy hitters are all an investigation
//! needs and the crates for it (count-min sketches) do not keep the keys.

/// Counts of byte-string keys, at most `cap` of them kept.
#[derive(Debug, Clone)]
pub struct Capped {
    map: hashbrown::HashMap<Box<[u8]>, u64>,
    cap: usize,
    /// Events of keys no longer kept.
    pub dropped: u64,
    /// Keys were dropped: counts are lower bounds.
    pub approximate: bool,
}

impl Capped {
    /// An empty counter keeping at most `cap` keys (at least 2).
    pub fn new(cap: usize) -> Self {
        Capped {
            map: hashbrown::HashMap::default(),
            cap: cap.max(2),
            dropped: 0,
            approximate: false,
        }
    }

    /// Count `key` `n` times.
    pub fn add(&mut self, key: &[u8], n: u64) {
        if let Some(c) = self.map.get_mut(key) {
            *c += n;
            return;
        }
        if self.map.len() >= self.cap {
            self.prune();
        }
        self.map.insert(key.into(), n);
    }

    fn prune(&mut self) {
        let mut counts: Vec<u64> = self.map.values().copied().collect();
        let k = counts.len() / 2;
        counts.select_nth_unstable(k);
        let cut = counts[k];
        let mut dropped = 0;
        self.map.retain(|_, c| {
            let keep = *c > cut;
            if !keep {
                dropped += *c;
            }
            keep
        });
        self.dropped += dropped;
        self.approximate = true;
    }

    /// Fold `other` in.
    pub fn merge(&mut self, other: Capped) {
        self.dropped += other.dropped;
        self.approximate |= other.approximate;
        for (k, n) in other.map {
            self.add(&k, n);
        }
    }

    /// The `n` most frequent, most frequent first (ties by key).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(&[u8], u64)> = self.map.iter().map(|(k, c)| (&k[..], *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(k, c)| (String::from_utf8_lossy(k).into_owned(), c))
            .collect()
    }

    /// Distinct keys kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_under_the_cap_and_bounded_over_it() {
        let mut c = Capped::new(100);
        for i in 0..50u32 {
            c.add(format!("k{i}").as_bytes(), 1);
        }
        c.add(b"hot", 1000);
        assert!(!c.approximate);
        assert_eq!(c.top(1), [("hot".to_string(), 1000)]);
        for i in 0..100_000u32 {
            c.add(format!("rare{i}").as_bytes(), 1);
        }
        assert!(c.len() <= 100 && c.approximate);
        assert_eq!(
            c.top(1),
            [("hot".to_string(), 1000)],
            "the heavy hitter survives"
        );
    }
}
