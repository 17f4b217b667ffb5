//! Which field of an experiment's entry is wrong. Each `[[method]]`, `[[hypothesis]]` and
//! `[[stop.probes]]` entry is chosen by its `kind`, so serde reads it whole before its fields
//! and reports an error at the entry (`method[0]: invalid duration "fast"`). This finds the
//! field: the key whose removal makes the error go away (or turns it into that key missing),
//! and the line it is on.

use serde::de::DeserializeOwned;

use super::{Fault, Probe};

/// `(method[0].delay, line)` for an error reported at `method[0]`; `offset` is where the
/// entry starts in `text`.
pub(super) fn culprit(text: &str, path: &str, offset: usize) -> Option<(String, usize)> {
    let (list, index) = path.strip_suffix(']')?.rsplit_once('[')?;
    let index: usize = index.parse().ok()?;
    let doc: toml::Table = toml::from_str(text).ok()?;
    let entries = match list {
        "method" => doc.get("method"),
        "hypothesis" => doc.get("hypothesis"),
        "stop.probes" => doc.get("stop")?.get("probes"),
        _ => None,
    }?;
    let entry = entries.as_array()?.get(index)?.as_table()?;
    let key = if list == "method" {
        bad_key::<Fault>(entry)
    } else {
        bad_key::<Probe>(entry)
    }?;
    Some((format!("{path}.{key}"), line_of(text, offset, &key)))
}

fn bad_key<T: DeserializeOwned>(entry: &toml::Table) -> Option<String> {
    entry.keys().filter(|k| *k != "kind").find_map(|k| {
        let mut without = entry.clone();
        without.remove(k);
        match toml::Value::Table(without).try_into::<T>() {
            Ok(_) => Some(k.clone()),
            Err(e) if e.message().contains(&format!("missing field `{k}`")) => Some(k.clone()),
            Err(_) => None,
        }
    })
}

/// The line of `key = ...` at or after `offset` (an inline entry: the line of `offset`).
fn line_of(text: &str, offset: usize, key: &str) -> usize {
    let offset = offset.min(text.len());
    let first = text[..offset].matches('\n').count() + 1;
    let at = text[offset..].lines().position(|l| {
        let l = l.trim_start();
        l.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
    });
    first + at.unwrap_or(0)
}
