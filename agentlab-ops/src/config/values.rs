//! Value types of the configuration that runbooks share: the integrity sample and
//! maintenance windows. They live here, below the runbooks, so the config parser validates
//! them without importing any runbook.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};

/// Which objects the integrity level reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// Every object.
    All,
    /// This many objects.
    Count(u64),
    /// This fraction of the objects.
    Fraction(f64),
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sample::All => f.write_str("all"),
            Sample::Count(n) => write!(f, "{n}"),
            Sample::Fraction(p) => write!(f, "{}%", p * 100.0),
        }
    }
}

impl Sample {
    /// `"all"`, `"200"` or `"10%"`.
    pub fn parse(s: &str) -> std::result::Result<Sample, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(Sample::All);
        }
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Sample::Fraction(p / 100.0)),
                _ => Err(format!(
                    "invalid sample {s:?}: a percentage between 0% and 100%"
                )),
            };
        }
        t.parse::<u64>().map(Sample::Count).map_err(|_| {
            format!("invalid sample {s:?}: \"all\", a count (200) or a percentage (10%)")
        })
    }
}

impl serde::Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Sample {
    /// `"all"`, `"10%"`, `"200"` or a whole number; `2.5` and `-1` are errors.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Sample::parse(&s).map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) if n.is_u64() => {
                Ok(Sample::Count(n.as_u64().unwrap_or(0)))
            }
            other => Err(serde::de::Error::custom(format!(
                "invalid sample {other}: \"all\", a count (200) or a percentage (\"10%\")"
            ))),
        }
    }
}

/// A weekly or daily window, in UTC: `"Sun 02:00-04:00"`, `"daily 02:00-03:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    day: Option<Weekday>,
    start: NaiveTime,
    end: NaiveTime,
}

impl MaintenanceWindow {
    /// Parse `"<day|daily> HH:MM-HH:MM"`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?} is not \"Sun 02:00-04:00\" or \"daily 02:00-03:00\"");
        let (day, range) = s.trim().split_once(' ').ok_or_else(bad)?;
        let day = if day.eq_ignore_ascii_case("daily") {
            None
        } else {
            Some(day.parse::<Weekday>().map_err(|_| bad())?)
        };
        let (a, b) = range.trim().split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        Ok(MaintenanceWindow {
            day,
            start: t(a)?,
            end: t(b)?,
        })
    }

    /// Whether `at` falls inside (a window may cross midnight).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let t = at.time();
        let in_time = if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        let day_ok = match self.day {
            None => true,
            Some(d) if self.start <= self.end || t >= self.start => at.weekday() == d,
            Some(d) => at.weekday() == d.succ(),
        };
        in_time && day_ok
    }
}
