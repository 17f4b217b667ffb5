//! The catalogue entries of the security runbooks.

use super::*;
use crate::runbook::registry::{Definition, OptionDoc, check_args, defaults_of, parse_args};

/// `access_review`.
pub static ACCESS_REVIEW: Definition = Definition {
    name: "access_review",
    command: "access review",
    aliases: &[],
    summary: "who can log in and sudo on every host: sessions, sudoers, uid 0, authorized_keys, sshd, app path modes → findings against the [access] allow-lists",
    changes: false,
    steps: &[
        "accounts: /etc/passwd and /etc/group (uid 0, duplicate uids, system shells)",
        "sudoers: /etc/sudoers and sudoers.d, modes and rules",
        "sshd: sshd_config with its Includes",
        "keys: every account's authorized_keys (type, bits, SHA256, comment, options, mode, age)",
        "sessions: who -u (live hosts)",
        "paths: the app's paths, two levels (world-writable, owners)",
        "judge: findings with severity and Lynis id; unexpected ones escalate",
    ],
    options: &[
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "root",
            kind: "path",
            help: "read files under this root (a fixture or a mounted image; default [access] root)",
        },
    ],
    defaults: defaults_of::<AccessOptions>,
    check_options: check_args::<AccessOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: AccessOptions = parse_args("access_review", v)?;
            Ok(access_review(env, &o, &run).await)
        })
    },
};

/// `auth_timeline`.
pub static AUTH_TIMELINE: Definition = Definition {
    name: "auth_timeline",
    command: "auth timeline",
    aliases: &[],
    summary: "auth.log/secure of every host as one timeline: logins, failures, sudo, su, sessions; per source and account; failed-then-accepted and out-of-hours flags",
    changes: false,
    steps: &[
        "read: the first of [access] auth_logs on each host, since the start",
        "timeline: sorted events, counts, flags (failed-then-accepted escalates)",
    ],
    options: &[
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "since",
            kind: "duration",
            help: "how far back (default 24h)",
        },
        OptionDoc {
            name: "root",
            kind: "path",
            help: "read the logs under this root",
        },
        OptionDoc {
            name: "max_events",
            kind: "count",
            help: "events kept in the payload, newest (default 10000)",
        },
    ],
    defaults: defaults_of::<TimelineOptions>,
    check_options: check_args::<TimelineOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: TimelineOptions = parse_args("auth_timeline", v)?;
            Ok(auth_timeline(env, &o, &run).await)
        })
    },
};

/// `rotate_ssh_key`.
pub static ROTATE_SSH_KEY: Definition = Definition {
    name: "rotate_ssh_key",
    command: "rotate ssh-key",
    aliases: &[],
    summary: "replace each host's login key with a new ed25519 key, proving the new one logs in before the old one is removed and refused after; a host that fails a step keeps its old key",
    changes: true,
    steps: &[
        "identity: the key the host is reached with, and its fingerprint",
        "generate: ssh-keygen -t ed25519 -a 100 -C rotate_ssh_key:<run>:<date>, here, mode 0600",
        "add: the new public key into authorized_keys (a copy of the file kept first)",
        "prove_new: a fresh login with only the new key (IdentitiesOnly, BatchMode, no agent)",
        "locate_old: the old key is in the file edited",
        "remove_old: the old key out, by fingerprint",
        "prove_old_refused: a fresh login with only the old key is refused",
        "switch: the identity_file change to make",
    ],
    options: &[
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "key_dir",
            kind: "path",
            help: "where the new private keys go (default: beside the current key)",
        },
        OptionDoc {
            name: "authorized_keys",
            kind: "path",
            help: "the file edited on each host (default .ssh/authorized_keys, from the login's home)",
        },
    ],
    defaults: defaults_of::<RotateOptions>,
    check_options: check_args::<RotateOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: RotateOptions = parse_args("rotate_ssh_key", v)?;
            Ok(rotate_ssh_key(env, &o, &run).await)
        })
    },
};

/// `incident_evidence`.
pub static INCIDENT_EVIDENCE: Definition = Definition {
    name: "incident_evidence",
    command: "incident evidence",
    aliases: &[],
    summary: "preserve an incident's evidence from every host, volatile first (sessions, processes, connections), then logs, into evidence/<incident>/<run>/ with a SHA-256 manifest; instance snapshots tagged with the incident",
    changes: true,
    steps: &[
        "volatile:<host>:<item>: who -u, ps, ss — each stored, never over an existing object",
        "log:<host>:<file>: each listed log (absent ones listed as absent)",
        "snapshot:<host>: every volume of the host's instance, tagged (when [compute] is configured)",
        "manifest: SHA-256, size, host, source, time and collector of every item; its own SHA-256 in the report",
    ],
    options: &[
        OptionDoc {
            name: "incident",
            kind: "id",
            help: "the incident (INC-42; default incident-<run id>: collect now, name later)",
        },
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "logs",
            kind: "paths",
            help: "logs to preserve (default: [access] auth_logs, /var/log/syslog, /var/log/messages)",
        },
        OptionDoc {
            name: "snapshot",
            kind: "bool",
            help: "snapshot the instances' volumes (default: when [compute] is configured)",
        },
    ],
    defaults: defaults_of::<EvidenceOptions>,
    check_options: check_args::<EvidenceOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: EvidenceOptions = parse_args("incident_evidence", v)?;
            Ok(incident_evidence(env, &o, &run).await)
        })
    },
};

/// `rotate_secret`.
pub static ROTATE_SECRET: Definition = Definition {
    name: "rotate_secret",
    command: "rotate secret",
    aliases: &[],
    summary: "rotate each [[secrets]] credential through its hooks: issue, prove the new value works, keep and install it, then revoke the old one and prove it refused; before the new one is in place any failure revokes it",
    changes: true,
    steps: &[
        "current:<name>: the value in use (current or current_file), by fingerprint only",
        "verify_old:<name>: the verify hook accepts it (else the hook proves nothing)",
        "issue:<name>: the issue hook; its undo revokes what it issued",
        "verify_new:<name>: the verify hook accepts the new value (retried while it propagates)",
        "output:<name>: the new value written 0600, the old file kept (when output is set)",
        "install:<name>: the install hook with the new value; its undo installs the old one",
        "revoke_old:<name>: the revoke hook with the old value (nothing is undone from here)",
        "prove_old_refused:<name>: the verify hook refuses the old value",
    ],
    options: &[OptionDoc {
        name: "secrets",
        kind: "names",
        help: "only these [[secrets]] (default: every one)",
    }],
    defaults: defaults_of::<RotateSecretOptions>,
    check_options: check_args::<RotateSecretOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: RotateSecretOptions = parse_args("rotate_secret", v)?;
            Ok(rotate_secret(env, &o, &run).await)
        })
    },
};

/// `grant_access`.
pub static GRANT_ACCESS: Definition = Definition {
    name: "grant_access",
    command: "access grant",
    aliases: &[],
    summary: "onboarding's Access Setup: an account with its public key (and optionally sudo) on every host, proven by a real login; a host that fails a step has its changes undone",
    changes: true,
    steps: &[
        "account:<host>: getent passwd <user>",
        "create:<host>: useradd --create-home --password '*' (key-only, not locked); undo userdel --remove",
        "key:<host>: the key into ~<user>/.ssh/authorized_keys (0700/0600, owned by the account); undo removes it",
        "sudo:<host>: gpasswd -a <user> <first existing [access] sudo_groups> (with --sudo); undo gpasswd -d",
        "prove_login:<host>: a fresh login as <user> with only --identity",
    ],
    options: &[
        OptionDoc {
            name: "user",
            kind: "account",
            help: "the account to grant",
        },
        OptionDoc {
            name: "key",
            kind: "public key or .pub path",
            help: "its public key",
        },
        OptionDoc {
            name: "sudo",
            kind: "bool",
            help: "also add it to the first existing sudo group",
        },
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "identity",
            kind: "path",
            help: "the private key of --key, to prove a real login",
        },
        OptionDoc {
            name: "shell",
            kind: "path",
            help: "login shell of a new account (default /bin/bash)",
        },
        OptionDoc {
            name: "label",
            kind: "text",
            help: "the account's comment (who it is)",
        },
    ],
    defaults: defaults_of::<GrantOptions>,
    check_options: check_args::<GrantOptions>,
    example: r#"{"user": "newhire", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl newhire@laptop", "sudo": true}"#,
    start: |env, v, run| {
        Box::pin(async move {
            let o: GrantOptions = parse_args("grant_access", v)?;
            Ok(grant_access(env, &o, &run).await)
        })
    },
};

/// `revoke_access`.
pub static REVOKE_ACCESS: Definition = Definition {
    name: "revoke_access",
    command: "access revoke",
    aliases: &[],
    summary: "offboarding: end an account's sessions, remove its keys (a copy kept), take it out of the sudo groups, lock or delete it, prove its key refused; every step tried, none undone",
    changes: true,
    steps: &[
        "account:<host>: getent passwd <user> (absent: nothing to revoke)",
        "sessions:<host>: pkill -KILL -u <user>",
        "keys:<host>: its authorized_keys emptied, a copy kept as .agentlab-<run>",
        "sudo:<host>:<group>: gpasswd -d from each sudo group it is in",
        "lock:<host>: usermod --lock --expiredate 1 (or delete: userdel, its home kept)",
        "prove_refused:<host>: a fresh login as <user> with only --identity is refused",
    ],
    options: &[
        OptionDoc {
            name: "user",
            kind: "account",
            help: "the account to revoke",
        },
        OptionDoc {
            name: "hosts",
            kind: "host names",
            help: "only these hosts (default: every host)",
        },
        OptionDoc {
            name: "delete",
            kind: "bool",
            help: "delete the account (its home kept) instead of locking it",
        },
        OptionDoc {
            name: "identity",
            kind: "path",
            help: "a private key of the account that must be refused afterwards",
        },
    ],
    defaults: defaults_of::<RevokeOptions>,
    check_options: check_args::<RevokeOptions>,
    example: r#"{"user": "newhire"}"#,
    start: |env, v, run| {
        Box::pin(async move {
            let o: RevokeOptions = parse_args("revoke_access", v)?;
            Ok(revoke_access(env, &o, &run).await)
        })
    },
};
