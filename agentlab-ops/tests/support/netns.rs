//! A network namespace for the netem tests, shared by the core's (`tests/it/chaos.rs`) and the
//! command's (`agentlab-ops-cli/tests/it/chaos_kill.rs`) through `#[path]`: loopback and a veth
//! pair `v1`/`v2` up, deleted on drop.

// Each including test crate uses a part of it.
#![allow(dead_code)]

use std::process::Command;

/// A namespace, by name.
pub struct Netns(pub String);

impl Netns {
    /// Run `ip ARGS`; whether it succeeded.
    pub fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A fresh namespace `al<tag>-<pid>`; None (after saying why) when it cannot be made and
    /// `AGENTLAB_OPS_SKIP_REAL=1`, else a panic: the tests need root.
    pub fn new(tag: &str) -> Option<Netns> {
        let name = format!("al{tag}-{}", std::process::id());
        if !Netns::ip(&["netns", "add", &name]) {
            if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") {
                eprintln!("SKIPPED netem: cannot add a network namespace (not root?)");
                return None;
            }
            panic!(
                "ip netns add failed: the netem tests need root (./scripts/test.sh runs them as root)"
            );
        }
        let ns = Netns(name);
        assert!(Netns::ip(&["-n", &ns.0, "link", "set", "lo", "up"]));
        assert!(Netns::ip(&[
            "-n", &ns.0, "link", "add", "v1", "type", "veth", "peer", "name", "v2"
        ]));
        assert!(Netns::ip(&["-n", &ns.0, "link", "set", "v1", "up"]));
        Some(ns)
    }

    /// `tc ARGS` inside it: its stdout.
    pub fn tc(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "tc"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        Netns::ip(&["netns", "del", &self.0]);
    }
}
