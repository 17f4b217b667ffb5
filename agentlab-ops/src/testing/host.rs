//! The `RemoteHost` conformance suite.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

fn fail(check: &str, msg: String) -> Error {
    Error::new(ErrorKind::Unexpected, format!("conformance {check}: {msg}"))
}

/// Arguments that a shell would mangle.
pub const NASTY_ARGS: &[&str] = &[
    "; rm -rf x",
    "it's \"quoted\"",
    "$(id)",
    "`id`",
    "two  spaces ",
    "line\nbreak",
    "$HOME",
    "*",
    "",
    "back\\slash",
];

/// `echo` answers with exit code 0 and its output.
pub async fn runs_and_captures(host: &dyn RemoteHost) -> Result<()> {
    let out = host.run(&Cmd::new("echo").arg("hello")).await?;
    if !out.success() || out.stdout != "hello\n" {
        return Err(fail("runs_and_captures", format!("{out:?}")));
    }
    Ok(())
}

/// A non-zero exit is an `Ok` with the code, not an error.
pub async fn nonzero_exit_is_reported(host: &dyn RemoteHost) -> Result<()> {
    let out = host.run(&Cmd::new("false")).await?;
    if out.status != Some(1) {
        return Err(fail(
            "nonzero_exit_is_reported",
            format!("status {:?}", out.status),
        ));
    }
    Ok(())
}

/// Arguments arrive verbatim, one per argument.
pub async fn arguments_are_verbatim(host: &dyn RemoteHost) -> Result<()> {
    let out = host
        .run(
            &Cmd::new("printf")
                .arg("<%s>\\n")
                .args(NASTY_ARGS.iter().copied()),
        )
        .await?;
    let want: String = NASTY_ARGS.iter().map(|a| format!("<{a}>\n")).collect();
    if !out.success() || out.stdout != want {
        return Err(fail(
            "arguments_are_verbatim",
            format!("got {:?}, want {want:?}", out.stdout),
        ));
    }
    Ok(())
}

/// A missing program is `not_found`, with the host named.
pub async fn missing_program_is_not_found(host: &dyn RemoteHost) -> Result<()> {
    match host.run(&Cmd::new("agentlab-ops-no-such-program")).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if !e
                .context()
                .iter()
                .any(|(k, v)| *k == "host" && v == host.name())
            {
                return Err(fail(
                    "missing_program_is_not_found",
                    format!("host not in context: {e}"),
                ));
            }
            Ok(())
        }
        Err(e) => Err(fail(
            "missing_program_is_not_found",
            format!("kind {} ({e})", e.kind()),
        )),
        Ok(o) => Err(fail(
            "missing_program_is_not_found",
            format!("succeeded: {o:?}"),
        )),
    }
}

/// A command past its timeout fails with `timeout`, promptly.
pub async fn timeout_is_enforced(host: &dyn RemoteHost) -> Result<()> {
    let start = Instant::now();
    let r = host
        .run(
            &Cmd::new("sleep")
                .arg("10")
                .timeout(Duration::from_millis(300)),
        )
        .await;
    let took = start.elapsed();
    match r {
        Err(e) if e.kind() == ErrorKind::Timeout && took < Duration::from_secs(5) => Ok(()),
        Err(e) => Err(fail(
            "timeout_is_enforced",
            format!("kind {} after {took:?}", e.kind()),
        )),
        Ok(o) => Err(fail("timeout_is_enforced", format!("finished: {o:?}"))),
    }
}

/// Concurrent commands on one host all answer correctly.
pub async fn concurrent_commands(host: &dyn RemoteHost) -> Result<()> {
    let outs = futures::future::join_all(
        (0..8).map(|i| async move { (i, host.run(&Cmd::new("echo").arg(format!("n{i}"))).await) }),
    )
    .await;
    for (i, o) in outs {
        let o = o?;
        if o.stdout != format!("n{i}\n") {
            return Err(fail(
                "concurrent_commands",
                format!("command {i} got {:?}", o.stdout),
            ));
        }
    }
    Ok(())
}

/// Reading a missing file is `not_found`.
pub async fn missing_file_is_not_found(host: &dyn RemoteHost) -> Result<()> {
    match host
        .read_file("/nonexistent/agentlab-ops/conformance.json")
        .await
    {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(
            "missing_file_is_not_found",
            format!("kind {} ({e})", e.kind()),
        )),
        Ok(_) => Err(fail("missing_file_is_not_found", "read succeeded".into())),
    }
}

/// Files round-trip byte for byte: write (creating the directory), list, read, rename,
/// exchange, delete — under a fresh directory in `/tmp`.
pub async fn files_round_trip(host: &dyn RemoteHost) -> Result<()> {
    let dir = format!(
        "/tmp/agentlab-ops-conformance-{}",
        crate::runbook::run::new_run_id()
    );
    let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let (a, b) = (format!("{dir}/a.bin"), format!("{dir}/b.bin"));
    host.write_file(&a, bytes::Bytes::from(data.clone()))
        .await?;
    host.write_file(&b, bytes::Bytes::from_static(b"other"))
        .await?;
    if host.read_file(&a).await?.to_vec() != data {
        return Err(fail("files_round_trip", "read back different bytes".into()));
    }
    if host.list_files(&dir, "*.bin").await? != vec![a.clone(), b.clone()] {
        return Err(fail("files_round_trip", "listing".into()));
    }
    host.exchange(&a, &b).await?;
    if &host.read_file(&a).await?[..] != b"other" || host.read_file(&b).await?.to_vec() != data {
        return Err(fail("files_round_trip", "exchange did not swap".into()));
    }
    let c = format!("{dir}/c.bin");
    host.rename(&b, &c).await?;
    host.delete_file(&a).await?;
    host.delete_file(&a).await?; // missing is fine
    if host.list_files(&dir, "*").await? != vec![c.clone()] {
        return Err(fail("files_round_trip", "rename/delete".into()));
    }
    host.delete_file(&c).await?;
    let _ = host.run(&Cmd::new("rmdir").arg(&dir)).await;
    Ok(())
}

/// Run every check.
pub async fn remote_host_conformance(host: &dyn RemoteHost) -> Result<()> {
    runs_and_captures(host).await?;
    nonzero_exit_is_reported(host).await?;
    arguments_are_verbatim(host).await?;
    missing_program_is_not_found(host).await?;
    timeout_is_enforced(host).await?;
    concurrent_commands(host).await?;
    missing_file_is_not_found(host).await?;
    files_round_trip(host).await?;
    Ok(())
}
