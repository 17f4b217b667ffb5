//! `[[secrets]]`: credentials the `rotate_secret` runbook rotates, each with the hooks a team
//! already has — a command or an HTTP call that issues a new value, checks that a value works,
//! puts it where it is used, and revokes one.

use super::*;

/// `[[secrets]]`: one rotated credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretRotation {
    /// Its name (`llm_api_key`): the option `secrets` picks by it.
    pub name: String,
    /// The value in use now, as `${ENV_VAR}`.
    #[serde(default)]
    pub current: Option<SecretRef>,
    /// Or a file on this machine holding it (what `install` rewrites).
    #[serde(default)]
    pub current_file: Option<PathBuf>,
    /// Issues a new value: its output (or `json_pointer` of it) is the new secret.
    pub issue: Hook,
    /// Succeeds when the value it is given works (exit 0 / a 2xx), fails when it is refused.
    pub verify: Hook,
    /// Puts the new value where it is used (a vault path, the hosts' env file); its undo is the
    /// same hook with the old value.
    #[serde(default)]
    pub install: Option<Hook>,
    /// Revokes the value it is given (the old one once the new one works; a new one that
    /// failed its check).
    pub revoke: Hook,
    /// Also write the new value here, mode 0600 (when nothing else keeps it).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// The longest each hook may take.
    #[serde(default = "d_hook_timeout")]
    pub timeout: Dur,
}

fn d_hook_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

/// A hook: a command on this machine, or an HTTP call.
///
/// A command gets the value it acts on in `AGENTLAB_SECRET` (and `AGENTLAB_SECRET_NEW`,
/// `AGENTLAB_SECRET_OLD`, `AGENTLAB_SECRET_NAME`) — in its environment, never its arguments,
/// which every user of the machine can read. An HTTP call may send it as the bearer token
/// (`auth = "secret"`) or as `{secret}` in the body; the URL never holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum Hook {
    /// `{ command = ["issue-key", "--for", "agent-lab"] }`.
    Command {
        /// Program and arguments.
        command: Vec<String>,
        /// The part of its JSON output that is the secret (`/key`); unset: the whole output,
        /// trimmed.
        #[serde(default)]
        json_pointer: Option<String>,
    },
    /// `{ url = "https://keys.internal/v1/keys", method = "POST", token = "${ADMIN_TOKEN}" }`.
    Http {
        /// The endpoint.
        url: String,
        /// `GET`, `POST`, `PUT`, `DELETE`.
        #[serde(default = "d_post")]
        method: String,
        /// Sent as the bearer token (an admin credential), unless `auth = "secret"`.
        #[serde(default)]
        token: Option<SecretRef>,
        /// `secret`: the value acted on is the bearer token (a check that it works).
        #[serde(default)]
        auth: Option<String>,
        /// Request body; `{secret}` is replaced by the value acted on.
        #[serde(default)]
        body: Option<String>,
        /// The part of the JSON answer that is the secret (issue).
        #[serde(default)]
        json_pointer: Option<String>,
    },
}

fn d_post() -> String {
    "POST".into()
}

impl Hook {
    fn check(&self, at: &str) -> std::result::Result<(), (String, String)> {
        match self {
            Hook::Command { command, .. } if command.is_empty() => {
                Err((format!("{at}.command"), "must name a program".into()))
            }
            Hook::Http { url, .. } if url.contains("{secret}") => Err((
                format!("{at}.url"),
                "a secret never goes in a URL (it is logged everywhere): use auth = \"secret\" or {secret} in body".into(),
            )),
            Hook::Http { url, .. } if !url.starts_with("http://") && !url.starts_with("https://") => {
                Err((format!("{at}.url"), format!("{url:?}: an http(s) URL")))
            }
            Hook::Http { method, .. }
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) =>
            {
                Err((format!("{at}.method"), format!("{method:?}: GET, POST, PUT, PATCH or DELETE")))
            }
            Hook::Http { auth: Some(a), .. } if a != "secret" => {
                Err((format!("{at}.auth"), format!("{a:?}: only \"secret\"")))
            }
            _ => Ok(()),
        }
    }
}

/// Check every `[[secrets]]` entry.
pub(super) fn check_secrets(all: &[SecretRotation]) -> std::result::Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    for (i, s) in all.iter().enumerate() {
        let at = format!("secrets[{i}]");
        if s.name.trim().is_empty() || !names.insert(s.name.as_str()) {
            return Err((
                format!("{at}.name"),
                format!("{:?}: empty or used twice", s.name),
            ));
        }
        if s.current.is_some() == s.current_file.is_some() {
            return Err((
                at,
                "set exactly one of current (${ENV_VAR}) or current_file".into(),
            ));
        }
        if s.install.is_none() && s.output.is_none() {
            return Err((
                at,
                "the new value would be kept nowhere: set install or output".into(),
            ));
        }
        s.issue.check(&format!("{at}.issue"))?;
        s.verify.check(&format!("{at}.verify"))?;
        s.revoke.check(&format!("{at}.revoke"))?;
        if let Some(h) = &s.install {
            h.check(&format!("{at}.install"))?;
        }
    }
    Ok(())
}
