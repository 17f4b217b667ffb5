//! The open loop's schedule: stages that hold a rate or ramp linearly from the previous one
//! (k6's ramping arrival rate), and the intended start of every request, computed from its
//! index by inverting the cumulative count — no timer per request, no drift.

use std::time::Duration;

/// One stage: the rate goes linearly from `from` to `to` per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long.
    pub duration: Duration,
    /// Requests per second at its start.
    pub from: f64,
    /// At its end.
    pub to: f64,
}

impl Stage {
    fn count(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.duration.as_secs_f64()
    }
    /// Seconds into the stage at which the `j`-th of its requests starts.
    fn at(&self, j: f64) -> f64 {
        let t = self.duration.as_secs_f64();
        let a = (self.to - self.from) / (2.0 * t);
        if a.abs() < 1e-12 {
            return j / self.from;
        }
        // from·x + a·x² = j
        let d = (self.from * self.from + 4.0 * a * j).max(0.0);
        ((d.sqrt() - self.from) / (2.0 * a)).clamp(0.0, t)
    }
}

/// The stages of an open-loop run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    stages: Vec<Stage>,
    /// Requests planned before each stage.
    before: Vec<f64>,
}

impl Schedule {
    /// `stages` in order; each must have a positive duration unless it is a jump (0 s), rates
    /// must be finite and at least 0, and the run must plan at least one request.
    pub fn new(stages: Vec<Stage>) -> Result<Schedule, String> {
        let mut before = Vec::with_capacity(stages.len());
        let mut sum = 0.0;
        for (i, s) in stages.iter().enumerate() {
            if !(s.from.is_finite() && s.to.is_finite() && s.from >= 0.0 && s.to >= 0.0) {
                return Err(format!(
                    "stage {}: rates are requests per second, 0 or more",
                    i + 1
                ));
            }
            before.push(sum);
            sum += s.count();
        }
        if sum < 1.0 {
            return Err("the stages plan no request".into());
        }
        Ok(Schedule { stages, before })
    }

    /// `rate` per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Result<Schedule, String> {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(format!("rate: {rate}: a positive number"));
        }
        Schedule::new(vec![Stage {
            duration,
            from: rate,
            to: rate,
        }])
    }

    /// Stages as written, `DUR:RATE` (ramp from the previous rate, `start` first, to RATE over
    /// DUR) or `DUR@RATE` (hold RATE for DUR): `["30s:100", "1m@100", "30s:0"]`.
    pub fn parse(start: f64, specs: &[String]) -> Result<Schedule, String> {
        let mut stages = Vec::new();
        let mut prev = start;
        for (i, spec) in specs.iter().enumerate() {
            let bad = |m: &str| {
                format!(
                    "stages[{i}]: {spec:?}: {m} (30s:100 ramps to 100/s in 30 s, 1m@100 holds 100/s for a minute)"
                )
            };
            let (d, hold, r) = match (spec.split_once(':'), spec.split_once('@')) {
                (Some((d, r)), None) => (d, false, r),
                (None, Some((d, r))) => (d, true, r),
                _ => return Err(bad("DUR:RATE or DUR@RATE")),
            };
            let duration = crate::units::parse_duration(d.trim()).map_err(|e| bad(&e))?;
            let rate: f64 = r
                .trim()
                .trim_end_matches("/s")
                .parse()
                .map_err(|_| bad("the rate is a number"))?;
            if !(rate >= 0.0 && rate.is_finite()) || duration.is_zero() {
                return Err(bad("a positive duration and a rate of 0 or more"));
            }
            let from = if hold { rate } else { prev };
            stages.push(Stage {
                duration,
                from,
                to: rate,
            });
            prev = rate;
        }
        if stages.is_empty() {
            return Err("stages: at least one".into());
        }
        Schedule::new(stages)
    }

    /// Requests planned.
    pub fn total(&self) -> u64 {
        let last = self.stages.len() - 1;
        (self.before[last] + self.stages[last].count()).floor() as u64
    }

    /// The whole run.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The average rate.
    pub fn mean_rate(&self) -> f64 {
        self.total() as f64 / self.duration().as_secs_f64().max(1e-9)
    }

    /// The intended start of request `i` after the run's start, or `None` past the end.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        let i = i as f64;
        let k = self.before.partition_point(|b| *b <= i).checked_sub(1)?;
        let mut k = k;
        // A stage planning no request (a ramp of 0 to 0) is passed over.
        while k < self.stages.len() && i - self.before[k] >= self.stages[k].count() {
            k += 1;
        }
        let s = self.stages.get(k)?;
        let start: Duration = self.stages[..k].iter().map(|s| s.duration).sum();
        Some(start + Duration::from_secs_f64(s.at(i - self.before[k])))
    }

    /// Its stages.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &Schedule, i: u64) -> f64 {
        s.offset(i).unwrap().as_secs_f64()
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = Schedule::constant(100.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.total(), 200);
        assert!((secs(&s, 50) - 0.5).abs() < 1e-9);
        assert!(s.offset(200).is_none());
    }

    #[test]
    fn a_ramp_sends_its_requests_at_the_rising_rate() {
        // 0 → 100/s over 10 s, then hold 100/s for 10 s: 500 + 1000 requests.
        let s = Schedule::parse(0.0, &["10s:100".into(), "10s@100".into()]).unwrap();
        assert_eq!(s.total(), 1500);
        // Half the ramp's requests (250) start when t²·5 = 250: t = √50.
        assert!(
            (secs(&s, 250) - 50f64.sqrt()).abs() < 1e-6,
            "{}",
            secs(&s, 250)
        );
        assert!((secs(&s, 500) - 10.0).abs() < 1e-6);
        assert!((secs(&s, 600) - 11.0).abs() < 1e-6);
        // Increasing, always.
        assert!((1..1500).all(|i| s.offset(i) >= s.offset(i - 1)));
        assert_eq!(s.offset(1500), None);
        let down = Schedule::parse(100.0, &["10s:0".into()]).unwrap();
        assert_eq!(down.total(), 500);
        assert!(secs(&down, 499) < 10.0 && secs(&down, 250) < 5.0);
    }

    #[test]
    fn bad_stages_name_the_stage_and_the_form() {
        let e = Schedule::parse(0.0, &["10s:100".into(), "fast".into()]).unwrap_err();
        assert!(e.contains("stages[1]") && e.contains("DUR:RATE"), "{e}");
        let e = Schedule::parse(0.0, &["10s:-5".into()]).unwrap_err();
        assert!(e.contains("stages[0]"), "{e}");
        assert!(
            Schedule::parse(0.0, &["10s:0".into()])
                .unwrap_err()
                .contains("no request")
        );
        assert!(Schedule::parse(0.0, &[]).is_err());
    }
}
