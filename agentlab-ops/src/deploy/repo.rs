//! Release tagging: a small [`Repo`] abstraction over the git command line, and a memory double.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};

/// The application's repository.
///
/// Contract: tags are release tags (`v1.5.0`); creating a tag that exists is an error (a
/// `conflict` from the memory double), never a silent move; pushing is a separate step, so a tag created but not pushed
/// can be deleted by an undo; listing returns release tags newest first by version order.
#[async_trait::async_trait]
pub trait Repo: Send + Sync + std::fmt::Debug {
    /// `git:/path` or `memory`.
    fn describe(&self) -> String;
    /// The version to release (`version.txt`).
    async fn version(&self) -> Result<String>;
    /// The commit being released.
    async fn head(&self) -> Result<String>;
    /// Release tags (`v*`), newest first by version order.
    async fn tags(&self) -> Result<Vec<String>>;
    /// Create an annotated tag at the head.
    async fn create_tag(&self, tag: &str, message: &str) -> Result<()>;
    /// Push a tag to the remote.
    async fn push_tag(&self, tag: &str) -> Result<()>;
    /// Delete a local tag (undo of a tag that was never pushed).
    async fn delete_tag(&self, tag: &str) -> Result<()>;
    /// The last `n` commits of the head, newest first (`git log -n`).
    async fn log(&self, n: usize) -> Result<Vec<Commit>>;
}

/// One commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Commit {
    /// Its id (full).
    pub sha: String,
    /// When it was committed.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its author.
    pub author: String,
    /// Its subject line.
    pub subject: String,
}

/// `git log --format=%H%x1f%cI%x1f%an%x1f%s`: one commit per line; a line that does not parse
/// is an error naming it.
fn parse_log(text: &str) -> Result<Vec<Commit>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\u{1f}').collect();
            let at = f
                .get(1)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            match (f.as_slice(), at) {
                ([sha, _, author, subject], Some(at)) => Ok(Commit {
                    sha: sha.to_string(),
                    at: at.with_timezone(&chrono::Utc),
                    author: author.to_string(),
                    subject: subject.to_string(),
                }),
                _ => Err(Error::new(
                    ErrorKind::InvalidResponse,
                    format!("git log: cannot read {l:?}"),
                )
                .with_operation("repo.log")),
            }
        })
        .collect()
}

/// A git working copy, driven through the `git` command.
#[derive(Debug, Clone)]
pub struct GitRepo {
    dir: PathBuf,
    remote: String,
    version_file: String,
    timeout: Duration,
}

impl GitRepo {
    /// The repository in `dir`, pushing to `remote`, reading the version from `version_file`.
    pub fn new(
        dir: impl Into<PathBuf>,
        remote: impl Into<String>,
        version_file: impl Into<String>,
    ) -> Self {
        GitRepo {
            dir: dir.into(),
            remote: remote.into(),
            version_file: version_file.into(),
            timeout: Duration::from_secs(60),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<String> {
        let shown = format!("git {}", args.join(" "));
        let mut cmd = tokio::process::Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args).kill_on_drop(true);
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, format!("{shown}: no answer within 60s")))?
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::Unsupported
                } else {
                    ErrorKind::Unexpected
                };
                Error::new(kind, format!("{shown}: cannot run git: {e}"))
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{shown} failed: {}", err.trim()),
            )
            .with_operation("repo.git"));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

#[async_trait::async_trait]
impl Repo for GitRepo {
    fn describe(&self) -> String {
        format!("git:{}", self.dir.display())
    }
    async fn version(&self) -> Result<String> {
        let path = self.dir.join(&self.version_file);
        let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
            Error::new(ErrorKind::NotFound, format!("{}: {e}", path.display()))
                .with_operation("repo.version")
        })?;
        let v = text.trim().trim_start_matches('v').to_string();
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("{}: {:?} is not a version", path.display(), text.trim()),
            ));
        }
        Ok(v)
    }
    async fn head(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"]).await
    }
    async fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .git(&["tag", "--list", "v*", "--sort=-v:refname"])
            .await?
            .lines()
            .map(str::to_string)
            .collect())
    }
    async fn log(&self, n: usize) -> Result<Vec<Commit>> {
        let n = format!("-n{}", n.max(1));
        parse_log(
            &self
                .git(&["log", &n, "--format=%H%x1f%cI%x1f%an%x1f%s"])
                .await?,
        )
    }
    async fn create_tag(&self, tag: &str, message: &str) -> Result<()> {
        self.git(&["tag", "-a", tag, "-m", message])
            .await
            .map(|_| ())
    }
    async fn push_tag(&self, tag: &str) -> Result<()> {
        self.git(&["push", &self.remote, &format!("refs/tags/{tag}")])
            .await
            .map(|_| ())
    }
    async fn delete_tag(&self, tag: &str) -> Result<()> {
        self.git(&["tag", "-d", tag]).await.map(|_| ())
    }
}

/// Version, head, tags (newest first), pushed tags, commits (newest first).
type RepoState = (String, String, Vec<String>, Vec<String>, Vec<Commit>);

/// A repository in memory: a version, a head, tags; records what was created and pushed.
#[derive(Debug, Clone)]
pub struct MemoryRepo {
    state: Arc<Mutex<RepoState>>,
    /// `create v1.2.0`, `push v1.2.0`, `delete v1.2.0`.
    pub calls: CallLog<String>,
    /// Inject failures.
    pub faults: Faults,
}

impl MemoryRepo {
    /// A repository at `version` with earlier release tags `tags` (newest first).
    pub fn new(version: &str, tags: &[&str]) -> Self {
        MemoryRepo {
            state: Arc::new(Mutex::new((
                version.to_string(),
                "0123456789abcdef0123456789abcdef01234567".to_string(),
                tags.iter().map(|t| t.to_string()).collect(),
                Vec::new(),
                Vec::new(),
            ))),
            calls: CallLog::default(),
            faults: Faults::default(),
        }
    }
    fn st(&self) -> std::sync::MutexGuard<'_, RepoState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Tags pushed to the remote.
    pub fn pushed(&self) -> Vec<String> {
        self.st().3.clone()
    }
    /// Commit `subject` at `at` (it becomes the head).
    pub fn commit(&self, subject: &str, author: &str, at: chrono::DateTime<chrono::Utc>) -> &Self {
        let mut st = self.st();
        let sha = format!("{:040x}", st.4.len() as u128 + 0xc0ffee);
        st.1 = sha.clone();
        st.4.insert(
            0,
            Commit {
                sha,
                at,
                author: author.into(),
                subject: subject.into(),
            },
        );
        self
    }
}

#[async_trait::async_trait]
impl Repo for MemoryRepo {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn version(&self) -> Result<String> {
        Ok(self.st().0.clone())
    }
    async fn head(&self) -> Result<String> {
        Ok(self.st().1.clone())
    }
    async fn tags(&self) -> Result<Vec<String>> {
        Ok(self.st().2.clone())
    }
    async fn create_tag(&self, tag: &str, _message: &str) -> Result<()> {
        self.calls.push(format!("create {tag}"));
        self.faults.apply("repo.tag").await?;
        let mut st = self.st();
        if st.2.iter().any(|t| t == tag) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("tag {tag} already exists"),
            ));
        }
        st.2.insert(0, tag.to_string());
        Ok(())
    }
    async fn push_tag(&self, tag: &str) -> Result<()> {
        self.calls.push(format!("push {tag}"));
        self.faults.apply("repo.push").await?;
        self.st().3.push(tag.to_string());
        Ok(())
    }
    async fn delete_tag(&self, tag: &str) -> Result<()> {
        self.calls.push(format!("delete {tag}"));
        self.st().2.retain(|t| t != tag);
        Ok(())
    }
    async fn log(&self, n: usize) -> Result<Vec<Commit>> {
        self.faults.apply("repo.log").await?;
        Ok(self.st().4.iter().take(n).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_that_does_not_parse_is_an_error_naming_it() {
        let ok = "abc\u{1f}2026-12-01T10:00:00+01:00\u{1f}Ann\u{1f}fix: a | b\n";
        let c = parse_log(ok).unwrap();
        assert_eq!(c[0].at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(
            (c[0].author.as_str(), c[0].subject.as_str()),
            ("Ann", "fix: a | b")
        );
        let e = parse_log("abc\u{1f}yesterday\u{1f}Ann\u{1f}x").unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
        assert!(parse_log("").unwrap().is_empty());
    }

    #[tokio::test]
    async fn git_log_lists_the_last_commits_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str], date: &str| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(d.path())
                .args(args)
                .env("GIT_AUTHOR_DATE", date)
                .env("GIT_COMMITTER_DATE", date)
                .env("GIT_AUTHOR_NAME", "Ops")
                .env("GIT_AUTHOR_EMAIL", "ops@example.com")
                .env("GIT_COMMITTER_NAME", "Ops")
                .env("GIT_COMMITTER_EMAIL", "ops@example.com")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"], "2026-12-01T09:00:00Z");
        git(
            &["commit", "-q", "--allow-empty", "-m", "first"],
            "2026-12-01T09:00:00Z",
        );
        git(
            &["commit", "-q", "--allow-empty", "-m", "second"],
            "2026-12-01T09:30:00Z",
        );
        let r = GitRepo::new(d.path(), "origin", "version.txt");
        let log = r.log(10).await.unwrap();
        let subjects: Vec<&str> = log.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(subjects, ["second", "first"]);
        assert_eq!(log[0].at.to_rfc3339(), "2026-12-01T09:30:00+00:00");
        assert_eq!(log[0].sha, r.head().await.unwrap());
        assert_eq!(r.log(1).await.unwrap().len(), 1);
    }
}
