//! `auth.log` / `secure` as events — sshd's Accepted / Failed / Invalid user, sudo's COMMAND,
//! su, PAM session open/close — and the timeline an incident needs: sorted events, counts per
//! source and user with first and last seen, and the flags (failed-then-accepted from one
//! source, logins outside working hours). Timestamps are the log scanner's (syslog or ISO).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// sshd accepted a login.
    Accepted,
    /// sshd refused a password or key.
    Failed,
    /// A login attempt for an account that does not exist.
    InvalidUser,
    /// sudo ran a command.
    Sudo,
    /// su to another account.
    Su,
    /// A PAM session opened.
    SessionOpened,
    /// A PAM session closed.
    SessionClosed,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEvent {
    /// When.
    pub time: DateTime<Utc>,
    /// The host it was logged on.
    pub host: String,
    /// What.
    pub kind: AuthKind,
    /// The account.
    pub user: String,
    /// The source address (sshd events).
    pub source: Option<String>,
    /// Method (`publickey`), command (sudo), target account (su), service (sessions).
    pub detail: String,
    /// Line in the log (1-based).
    pub line: usize,
}

struct Pattern {
    re: Regex,
    kind: AuthKind,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |re: &str, kind| Pattern {
        re: Regex::new(re).expect("auth pattern"),
        kind,
    };
    vec![
        p(
            r"sshd\[\d+\]: Accepted (?P<d>\S+) for (?P<u>\S+) from (?P<s>\S+)",
            AuthKind::Accepted,
        ),
        p(
            r"sshd\[\d+\]: Failed (?P<d>\S+) for (?:invalid user )?(?P<u>\S+) from (?P<s>\S+)",
            AuthKind::Failed,
        ),
        p(
            r"sshd\[\d+\]: Invalid user (?P<u>\S*) from (?P<s>\S+)",
            AuthKind::InvalidUser,
        ),
        p(
            r"sudo(?:\[\d+\])?: +(?P<u>\S+) : .*COMMAND=(?P<d>.*)$",
            AuthKind::Sudo,
        ),
        p(
            r"su(?:\[\d+\])?: (?:\(to (?P<d>\S+)\) (?P<u>\S+) on|Successful su for (?P<d2>\S+) by (?P<u2>\S+))",
            AuthKind::Su,
        ),
        p(
            r"pam_unix\((?P<d>[^:]+):session\): session opened for user (?P<u>[^\s(]+)",
            AuthKind::SessionOpened,
        ),
        p(
            r"pam_unix\((?P<d>[^:]+):session\): session closed for user (?P<u>[^\s(]+)",
            AuthKind::SessionClosed,
        ),
    ]
});

/// What a log gave: events, and the lines without a time or not understood.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    /// Events, in the log's order.
    pub events: Vec<AuthEvent>,
    /// Lines with no timestamp we know.
    pub malformed: u64,
    /// Lines with a time that are no event of ours (cron's sessions are events; a
    /// `Connection closed` is not).
    pub other: u64,
}

fn one(line: &str) -> Option<(AuthKind, String, Option<String>, String)> {
    for p in PATTERNS.iter() {
        if let Some(c) = p.re.captures(line) {
            let get = |a: &str, b: &str| {
                c.name(a)
                    .or_else(|| c.name(b))
                    .map(|m| m.as_str().to_string())
            };
            let user = get("u", "u2").unwrap_or_default();
            let detail = get("d", "d2").unwrap_or_default();
            let source = c.name("s").map(|m| m.as_str().to_string());
            return Some((p.kind, user, source, detail.trim().to_string()));
        }
    }
    None
}

/// Parse a log of `host`; syslog lines (no year) take `year`, or the year before when that
/// would put them after `now`. Lines before `since` are skipped.
pub fn parse(text: &str, host: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> Parsed {
    let mut out = Parsed::default();
    let year = now.year() as u32;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some(mut t) = crate::logs::time::line_time(line.as_bytes(), year) else {
            out.malformed += 1;
            continue;
        };
        if t > now.timestamp() + 86_400 {
            t = crate::logs::time::line_time(line.as_bytes(), year - 1).unwrap_or(t);
        }
        let Some(time) = DateTime::from_timestamp(t, 0) else {
            out.malformed += 1;
            continue;
        };
        if time < since {
            continue;
        }
        match one(line) {
            Some((kind, user, source, detail)) => out.events.push(AuthEvent {
                time,
                host: host.to_string(),
                kind,
                user,
                source,
                detail,
                line: i + 1,
            }),
            None => out.other += 1,
        }
    }
    out
}

/// Counts for one source address or account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Accepted logins.
    pub accepted: u64,
    /// Failed attempts (failed passwords/keys and invalid users).
    pub failed: u64,
    /// sudo commands.
    pub sudo: u64,
    /// First seen.
    pub first: Option<DateTime<Utc>>,
    /// Last seen.
    pub last: Option<DateTime<Utc>>,
}

impl Tally {
    fn add(&mut self, e: &AuthEvent) {
        match e.kind {
            AuthKind::Accepted => self.accepted += 1,
            AuthKind::Failed | AuthKind::InvalidUser => self.failed += 1,
            AuthKind::Sudo => self.sudo += 1,
            _ => {}
        }
        self.first = Some(self.first.map_or(e.time, |f| f.min(e.time)));
        self.last = Some(self.last.map_or(e.time, |l| l.max(e.time)));
    }
}

/// A flag the timeline raises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthFlag {
    /// A source failed, then got in: a guessed password or a found key.
    FailedThenAccepted {
        /// The source.
        source: String,
        /// The account it got into.
        user: String,
        /// Failures before the acceptance.
        failures: u64,
        /// When it got in.
        at: DateTime<Utc>,
        /// On which host.
        host: String,
    },
    /// A login or sudo outside working hours.
    OutOfHours {
        /// The account.
        user: String,
        /// What (`accepted`, `sudo`).
        event: AuthKind,
        /// When.
        at: DateTime<Utc>,
        /// On which host.
        host: String,
    },
}

/// The timeline of several hosts' logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Every event, sorted by time (then host, line).
    pub events: Vec<AuthEvent>,
    /// Per source address.
    pub by_source: BTreeMap<String, Tally>,
    /// Per account.
    pub by_user: BTreeMap<String, Tally>,
    /// What stands out.
    pub flags: Vec<AuthFlag>,
}

/// Working time: `(start, end)` minutes of the day (UTC) and the working days.
#[derive(Debug, Clone)]
pub struct Hours {
    /// Minutes after midnight, start and end.
    pub span: (u32, u32),
    /// Working days.
    pub days: Vec<Weekday>,
}

impl Hours {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        let m = t.hour() * 60 + t.minute();
        self.days.contains(&t.weekday()) && m >= self.span.0 && m < self.span.1
    }
}

/// Build the timeline: sort, count, flag.
pub fn timeline(mut events: Vec<AuthEvent>, hours: &Hours) -> Timeline {
    events.sort_by(|a, b| (a.time, &a.host, a.line).cmp(&(b.time, &b.host, b.line)));
    let mut t = Timeline::default();
    let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        if let Some(s) = &e.source {
            t.by_source.entry(s.clone()).or_default().add(e);
        }
        if !e.user.is_empty() {
            t.by_user.entry(e.user.clone()).or_default().add(e);
        }
        match (e.kind, e.source.as_deref()) {
            (AuthKind::Failed | AuthKind::InvalidUser, Some(s)) => {
                *failures.entry(s).or_default() += 1
            }
            (AuthKind::Accepted, Some(s)) => {
                if let Some(n) = failures.remove(s).filter(|n| *n > 0) {
                    t.flags.push(AuthFlag::FailedThenAccepted {
                        source: s.to_string(),
                        user: e.user.clone(),
                        failures: n,
                        at: e.time,
                        host: e.host.clone(),
                    });
                }
            }
            _ => {}
        }
        if matches!(e.kind, AuthKind::Accepted | AuthKind::Sudo) && !hours.contains(e.time) {
            t.flags.push(AuthFlag::OutOfHours {
                user: e.user.clone(),
                event: e.kind,
                at: e.time,
                host: e.host.clone(),
            });
        }
    }
    t.events = events;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Dec  1 09:00:01 web-1 sshd[100]: Failed password for root from 203.0.113.9 port 50000 ssh2
Dec  1 09:00:03 web-1 sshd[101]: Invalid user admin from 203.0.113.9 port 50002
Dec  1 09:00:09 web-1 sshd[102]: Accepted password for root from 203.0.113.9 port 50004 ssh2
Dec  1 09:00:09 web-1 sshd[102]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)
2026-12-01T23:30:00.000000+00:00 web-1 sudo:     ops : TTY=pts/0 ; PWD=/home/ops ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow
Dec  1 09:05:00 web-1 su: (to root) ops on pts/1
Dec  1 09:06:00 web-1 sshd[103]: Connection closed by 10.0.0.1 port 1 [preauth]
garbage without a time
";

    #[test]
    fn events_counts_and_flags() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z")
            .unwrap()
            .to_utc();
        let p = parse(LOG, "web-1", now - chrono::Duration::days(2), now);
        assert_eq!(p.malformed, 1);
        assert_eq!(p.other, 1);
        let kinds: Vec<AuthKind> = p.events.iter().map(|e| e.kind).collect();
        use AuthKind::*;
        assert_eq!(
            kinds,
            [Failed, InvalidUser, Accepted, SessionOpened, Sudo, Su]
        );
        assert_eq!(p.events[4].detail, "/usr/bin/cat /etc/shadow");
        assert_eq!(
            (p.events[5].user.as_str(), p.events[5].detail.as_str()),
            ("ops", "root")
        );
        let hours = Hours {
            span: (8 * 60, 18 * 60),
            days: vec![Weekday::Tue],
        };
        let t = timeline(p.events, &hours);
        assert_eq!(t.events.last().unwrap().kind, Sudo, "sorted by time");
        let src = &t.by_source["203.0.113.9"];
        assert_eq!((src.failed, src.accepted), (2, 1));
        assert!(
            matches!(&t.flags[0], AuthFlag::FailedThenAccepted { failures: 2, user, .. } if user == "root")
        );
        // 2026-12-01 is a Tuesday: the 09:00 login is in hours, the 23:30 sudo is not.
        assert_eq!(t.flags.len(), 2);
        assert!(matches!(
            &t.flags[1],
            AuthFlag::OutOfHours { event: Sudo, .. }
        ));
    }
}
