//! Value types of the configuration that runbooks share: the integrity sample and
//! maintenance windows. They live here, below the runbooks, so the config parser validates
//! them without importing any runbook.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};

use super::*;

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

// ---------------------------------------------------------------------------------------------
// Validated value types: validation happens during deserialisation so errors carry line + field.

/// A duration written as `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"30d"` or a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

pub use crate::units::{format_duration, parse_duration};

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"5s\" or a number of seconds")
        })? {
            Raw::Num(n) if n >= 0.0 && n.is_finite() => Ok(Dur(Duration::from_secs_f64(n))),
            Raw::Num(n) => Err(serde::de::Error::custom(format!("invalid duration {n}"))),
            Raw::Str(s) => parse_duration(&s)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A fraction in `[0, 1]`, also accepted as a percentage string (`"90%"`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        let v = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a fraction such as 0.9 or a percentage \"90%\"")
        })? {
            Raw::Num(n) => n,
            Raw::Str(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("invalid percentage {s:?}, expected \"90%\""))
                })?,
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range: a fraction must be between 0 and 1"
            )));
        }
        Ok(Ratio(v))
    }
}

/// An SLO target, strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Target(pub f64);

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v > 0.0 && v < 1.0 {
            Ok(Target(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "target {v} must be strictly between 0 and 1 (e.g. 0.999 for 99.9%)"
            )))
        }
    }
}

/// An `http(s)://` base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parse and validate.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let u = reqwest::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("URL {s:?} must start with http:// or https://"));
        }
        if u.host_str().is_none() {
            return Err(format!("URL {s:?} has no host"));
        }
        Ok(BaseUrl(s.trim_end_matches('/').to_string()))
    }
    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Join a path (`/health`).
    pub fn join(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        format!("{}/{}", self.0, path.trim_start_matches('/'))
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BaseUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostAddress {
    /// Commands run as local processes.
    Local,
    /// `ssh://user@host:port`.
    Ssh {
        /// Login user (None: the SSH default).
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl HostAddress {
    /// Parse `local` or `ssh://[user@]host[:port]`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if s == "local" || s == "localhost-process" {
            return Ok(HostAddress::Local);
        }
        let rest = s.strip_prefix("ssh://").ok_or_else(|| {
            format!("invalid host address {s:?}: expected \"local\" or \"ssh://user@host:port\"")
        })?;
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(format!("invalid host address {s:?}: empty user")),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [v6]:port
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("invalid host address {s:?}"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(format!("invalid host address {s:?}: no host"));
        }
        let port = if port.is_empty() {
            22
        } else {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("invalid port {port:?} in host address {s:?}"))?
        };
        Ok(HostAddress::Ssh { user, host, port })
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddress::Local => f.write_str("local"),
            HostAddress::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for HostAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HostAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reference to a secret in the environment: `${NAME}`. Inline values are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    name: String,
}

impl SecretRef {
    /// A reference to the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef { name: name.into() }
    }
    /// The variable name.
    pub fn var(&self) -> &str {
        &self.name
    }
    /// Read the variable now.
    pub fn resolve(&self, field: &str) -> Result<Secret> {
        Secret::from_env_ref(&format!("${{{}}}", self.name))
            .map_err(|m| Error::config(format!("{field}: {m}")).with_operation("config.secret"))
    }
}

/// A secret read from its `${ENV_VAR}` when first needed, not when the environment is built: a
/// morning check runs without the Slack webhook's variable; posting fails then, naming it.
#[derive(Debug, Clone)]
pub struct LazySecret {
    reference: Option<(SecretRef, String)>,
    value: std::sync::OnceLock<Secret>,
}

impl LazySecret {
    /// Resolved on first use from `reference`; `field` names it in the error.
    pub fn deferred(reference: SecretRef, field: impl Into<String>) -> Self {
        LazySecret {
            reference: Some((reference, field.into())),
            value: std::sync::OnceLock::new(),
        }
    }
    /// Already known.
    pub fn known(secret: Secret) -> Self {
        let value = std::sync::OnceLock::new();
        let _ = value.set(secret);
        LazySecret {
            reference: None,
            value,
        }
    }
    /// The secret, resolving it now if needed.
    pub fn get(&self) -> Result<&Secret> {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let (r, field) = self
            .reference
            .as_ref()
            .ok_or_else(|| Error::config("secret without a value or a reference"))?;
        let v = r.resolve(field)?;
        Ok(self.value.get_or_init(|| v))
    }
    /// How to name it without resolving it: `${VAR}`, or the resolved secret's origin.
    pub fn describe(&self) -> String {
        match (self.value.get(), &self.reference) {
            (Some(v), _) => v.origin().to_string(),
            (None, Some((r, _))) => format!("${{{}}}", r.var()),
            (None, None) => "unset".into(),
        }
    }
}

impl From<Secret> for LazySecret {
    fn from(s: Secret) -> Self {
        LazySecret::known(s)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match parse_env_ref(&s) {
            Some(name) => Ok(SecretRef {
                name: name.to_string(),
            }),
            // Never echo the value: it may be the secret itself.
            None => Err(serde::de::Error::custom(
                "secrets must be written as a ${ENV_VAR} reference, never inline",
            )),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("${{{}}}", self.name))
    }
}

// ---------------------------------------------------------------------------------------------
