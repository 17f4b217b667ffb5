//! Message templates, Drain-style: the line split on whitespace, every token that carries a
//! variable part (a digit: numbers, ids, IPs, times, durations; or a long run of hex, a UUID)
//! replaced by `<*>`, so `user 42 timed out after 3.5s` and `user 7 timed out after 12s` are
//! one template. Bytes in, lossy text out; bounded length.

/// The longest template kept, in bytes.
pub const MAX_TEMPLATE: usize = 240;

fn variable(tok: &[u8]) -> bool {
    if tok.iter().any(u8::is_ascii_digit) {
        return true;
    }
    let hexish = tok
        .iter()
        .filter(|c| c.is_ascii_hexdigit() || **c == b'-')
        .count();
    tok.len() >= 16 && hexish == tok.len()
}

/// The template of a line.
pub fn template_of(line: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(line.len().min(MAX_TEMPLATE));
    for tok in line
        .split(|c| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        if variable(tok) {
            out.extend_from_slice(b"<*>");
        } else {
            out.extend_from_slice(tok);
        }
        if out.len() >= MAX_TEMPLATE {
            out.truncate(MAX_TEMPLATE);
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_are_masked() {
        let a =
            template_of(b"2026-12-01T10:00:01Z ERROR user 42 timed out after 3.5s from 10.0.0.7");
        let b = template_of(b"2026-12-01T10:09:59Z ERROR user 7 timed out after 12s from 10.0.0.9");
        assert_eq!(a, b);
        assert_eq!(a, "<*> ERROR user <*> timed out after <*> from <*>");
        let c = template_of(b"ERROR KeyError: 'session' in deadbeefdeadbeefdeadbeef");
        assert_eq!(c, "ERROR KeyError: 'session' in <*>");
    }

    proptest::proptest! {
        #[test]
        fn bounded_and_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let t = template_of(&bytes);
            proptest::prop_assert!(t.len() <= MAX_TEMPLATE * 3);
            proptest::prop_assert_eq!(template_of(t.as_bytes()), template_of(t.as_bytes()));
        }
    }
}
