//! Active sessions from `who -u`: user, terminal, login time, idle, source.

use serde::{Deserialize, Serialize};

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who.
    pub user: String,
    /// Terminal (`pts/0`).
    pub tty: String,
    /// Login time as printed.
    pub since: String,
    /// Idle (`.` = active now, `old` = over a day, else `HH:MM`).
    pub idle: Option<String>,
    /// Source host or address, when remote.
    pub from: Option<String>,
}

fn is_idle(s: &str) -> bool {
    s == "." || s == "old" || (s.len() == 5 && s.as_bytes()[2] == b':')
}

/// Parse `who -u` (ISO `2026-12-02 10:00` or `Dec  2 10:00` dates); lines that are neither
/// are skipped.
pub fn parse_who(text: &str) -> Vec<Session> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            let iso = f[2].len() == 10 && f[2].as_bytes()[4] == b'-';
            let (since, rest) = if iso {
                (format!("{} {}", f[2], f[3]), &f[4..])
            } else {
                (f.get(2..5)?.join(" "), f.get(5..).unwrap_or(&[]))
            };
            let from = f
                .last()
                .filter(|s| s.starts_with('(') && s.ends_with(')'))
                .map(|s| s.trim_matches(|c| c == '(' || c == ')').to_string());
            Some(Session {
                user: f[0].to_string(),
                tty: f[1].to_string(),
                since,
                idle: rest.first().filter(|s| is_idle(s)).map(|s| s.to_string()),
                from,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_date_styles_parse_with_idle_and_source() {
        let s = parse_who(
            "root     pts/0        2026-12-02 10:00 00:05        1234 (10.0.0.5)\nops      pts/1        Dec  2 09:12   .          999 (bastion.example)\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].idle.as_deref(), Some("00:05"));
        assert_eq!(s[0].from.as_deref(), Some("10.0.0.5"));
        assert_eq!(s[1].since, "Dec 2 09:12");
        assert_eq!(s[1].idle.as_deref(), Some("."));
    }
}
