//! Helpers of the command's tests: the binary in a directory of its own, output as text.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// `agentlab-ops` in `dir`, with no config from the environment, its journal in `dir`, and no
/// Slack webhook variable.
pub fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agentlab-ops"));
    c.current_dir(dir)
        .env_remove("AGENTLAB_OPS_CONFIG")
        .env_remove("SLACK_WEBHOOK_URL")
        .env("AGENTLAB_OPS_JOURNAL", dir.join("journal.jsonl"));
    c
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
