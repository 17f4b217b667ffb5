//! The `tc` commands of the netem fault, and what makes it safe (Pumba deleted a root qdisc
//! that was not its own, pumba#343): the fault goes in as the root qdisc under a handle of our
//! own, only when the root is the kernel's default one; it is deleted *by that handle* (the
//! kernel refuses a delete whose handle does not match, so the watchdog can never remove a
//! qdisc someone else put there since); afterwards `tc -j qdisc show` must show the device as it
//! was.

use serde::Deserialize;

use crate::units::format_duration;

/// Our root qdisc's handle.
pub const HANDLE: &str = "a9c7:";

/// The root qdisc of a device, from `tc -j qdisc show dev D`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Qdisc {
    /// `netem`, `noqueue`, `fq_codel`, `prio`...
    pub kind: String,
    /// `0:` for the kernel's default, `a9c7:` ours.
    pub handle: String,
    #[serde(default)]
    root: bool,
}

impl Qdisc {
    /// The kernel's own (handle `0:`): nobody put it there.
    pub fn is_default(&self) -> bool {
        self.handle == "0:"
    }
    /// Ours.
    pub fn is_ours(&self) -> bool {
        self.handle == HANDLE
    }
}

/// `tc -j qdisc show dev D`.
pub fn show(device: &str) -> Vec<String> {
    ["tc", "-j", "qdisc", "show", "dev", device]
        .map(String::from)
        .to_vec()
}

/// The root qdisc in `tc -j` output (`None`: the device has none listed).
pub fn root(json: &str) -> Result<Option<Qdisc>, String> {
    let all: Vec<Qdisc> =
        serde_json::from_str(json.trim()).map_err(|e| format!("tc -j qdisc show: {e}"))?;
    Ok(all.into_iter().find(|q| q.root))
}

/// `tc qdisc add dev D root handle a9c7: netem delay 500ms loss 1%` (or the qdisc given).
pub fn add(
    device: &str,
    delay: Option<std::time::Duration>,
    loss: Option<f64>,
    qdisc: &[String],
) -> Vec<String> {
    let mut a: Vec<String> = [
        "tc", "qdisc", "add", "dev", device, "root", "handle", HANDLE,
    ]
    .map(String::from)
    .to_vec();
    if !qdisc.is_empty() {
        a.extend(qdisc.iter().cloned());
        return a;
    }
    a.push("netem".into());
    if let Some(d) = delay {
        a.extend(["delay".into(), format!("{}ms", d.as_millis())]);
    }
    if let Some(l) = loss {
        a.extend(["loss".into(), format!("{l}%")]);
    }
    a
}

/// `tc qdisc del dev D root handle a9c7:` — only ours: the kernel checks the handle.
pub fn del(device: &str) -> Vec<String> {
    [
        "tc", "qdisc", "del", "dev", device, "root", "handle", HANDLE,
    ]
    .map(String::from)
    .to_vec()
}

/// Why the fault must not go in, given the device's root qdisc now.
pub fn refuse(device: &str, root: Option<&Qdisc>) -> Option<String> {
    match root {
        Some(q) if q.is_ours() => Some(format!(
            "{device}: our qdisc {HANDLE} is already there (another experiment running?)"
        )),
        Some(q) if !q.is_default() => Some(format!(
            "{device}: a root qdisc of someone else's is there ({} {}): not touched",
            q.kind, q.handle
        )),
        _ => None,
    }
}

/// One line for the plan.
pub fn describe(device: &str, delay: Option<std::time::Duration>, loss: Option<f64>) -> String {
    let mut parts = Vec::new();
    if let Some(d) = delay {
        parts.push(format!("delay {}", format_duration(d)));
    }
    if let Some(l) = loss {
        parts.push(format!("loss {l}%"));
    }
    format!("netem {} on {device} (handle {HANDLE})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_from_tc_json() {
        let default = r#"[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]"#;
        let q = root(default).unwrap().unwrap();
        assert!(q.is_default() && refuse("eth0", Some(&q)).is_none());
        let foreign = r#"[{"kind":"htb","handle":"1:","root":true,"options":{}},{"kind":"pfifo","handle":"8001:","parent":"1:1"}]"#;
        let q = root(foreign).unwrap().unwrap();
        assert!(refuse("eth0", Some(&q)).unwrap().contains("htb 1:"));
        let ours = format!(r#"[{{"kind":"netem","handle":"{HANDLE}","root":true}}]"#);
        assert!(root(&ours).unwrap().unwrap().is_ours());
        assert!(root("garbage").is_err());
        assert_eq!(
            add(
                "eth0",
                Some(std::time::Duration::from_millis(500)),
                Some(1.5),
                &[]
            )
            .join(" "),
            "tc qdisc add dev eth0 root handle a9c7: netem delay 500ms loss 1.5%"
        );
        assert_eq!(
            del("eth0").join(" "),
            "tc qdisc del dev eth0 root handle a9c7:"
        );
    }
}
