//! `authorized_keys` entries (osquery's `authorized_keys` table): type, size, SHA-256
//! fingerprint as `ssh-keygen -l` prints it, comment and options, parsed with `ssh-key`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

/// One key of an `authorized_keys` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Line (1-based).
    pub line: usize,
    /// Algorithm (`ssh-ed25519`, `ssh-rsa`, ...).
    pub key_type: String,
    /// Key size in bits.
    pub bits: u32,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// Comment (often `user@host`).
    pub comment: String,
    /// Options (`from="10.0.0.0/8"`, `command="..."`, `no-pty`).
    pub options: Vec<String>,
}

impl KeyEntry {
    /// Weak by today's standards: DSA, RSA under 2048 bits.
    pub fn weak(&self) -> bool {
        self.key_type == "ssh-dss" || (self.key_type == "ssh-rsa" && self.bits < 2048)
    }
}

/// Size in bits of a public key.
pub fn key_bits(k: &KeyData) -> u32 {
    let mp_bits = |b: Option<&[u8]>| {
        b.map_or(0, |b| {
            let lead = b.first().map_or(0, |x| x.leading_zeros());
            (b.len() as u32 * 8).saturating_sub(lead)
        })
    };
    match k {
        KeyData::Rsa(r) => mp_bits(r.n.as_positive_bytes()),
        KeyData::Dsa(d) => mp_bits(d.p.as_positive_bytes()),
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) => 256,
        // ECDSA without the `ecdsa` feature (it would pull in three curve crates): the size
        // is in the algorithm's name.
        other => {
            let name = other.algorithm().to_string();
            ["256", "384", "521"]
                .into_iter()
                .find(|b| name.contains(&format!("nistp{b}")))
                .and_then(|b| b.parse().ok())
                .unwrap_or(0)
        }
    }
}

/// The SHA-256 fingerprint of a public key line (`ssh-ed25519 AAAA... comment`).
pub fn fingerprint(public_key: &str) -> Result<String, String> {
    PublicKey::from_openssh(public_key.trim())
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .map_err(|e| format!("not an OpenSSH public key: {e}"))
}

/// Parse an `authorized_keys` file: its entries, and the lines that are not keys (line, why).
pub fn parse_authorized_keys(text: &str) -> (Vec<KeyEntry>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match ssh_key::authorized_keys::Entry::from_str(l) {
            Ok(e) => {
                let k = e.public_key();
                out.push(KeyEntry {
                    line: i + 1,
                    key_type: k.algorithm().to_string(),
                    bits: key_bits(k.key_data()),
                    fingerprint: k.fingerprint(HashAlg::Sha256).to_string(),
                    comment: k.comment().to_string(),
                    options: e.config_opts().iter().map(str::to_string).collect(),
                });
            }
            Err(e) => bad.push((i + 1, format!("not a key: {e}"))),
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ssh-keygen -t ed25519 -C test@example; ssh-keygen -lf prints the fingerprint below.
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM8AAcytLRw+1YOgZ6dNxcIa1bs8aLq0wOZkiFuaKWNv test@example";
    const ED_FP: &str = "SHA256:Snl6tL0gsS1ChqdPmSamvHufjJUk+ssUTgJDP8KJAEU";

    #[test]
    fn entries_with_options_parse_and_garbage_is_named_by_line() {
        let text = format!("# keys\n{ED}\nfrom=\"10.0.0.0/8\",no-pty {ED}\nnot a key at all\n");
        let (keys, bad) = parse_authorized_keys(&text);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].key_type, "ssh-ed25519");
        assert_eq!(keys[0].bits, 256);
        assert_eq!(keys[0].comment, "test@example");
        assert_eq!(keys[1].options, ["from=\"10.0.0.0/8\"", "no-pty"]);
        assert_eq!(keys[1].line, 3);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 4);
        assert!(!keys[0].weak());
        assert_eq!(fingerprint(ED).unwrap(), keys[0].fingerprint);
    }

    #[test]
    fn the_fingerprint_is_the_one_ssh_keygen_prints() {
        assert_eq!(fingerprint(ED).unwrap(), ED_FP);
    }
}
