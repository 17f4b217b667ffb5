//! Run N commands on one SSH host through `SshHost`, sequentially and fanned out, and print the
//! wall time of each. Used by `benches/ssh_commands.sh` beside a plain `ssh` loop.
//!
//! `cargo run --release --example ssh_bench -- ssh://user@127.0.0.1:PORT KEY KNOWN_HOSTS N`

use std::time::Instant;

use agentlab_ops::config::HostAddress;
use agentlab_ops::host::{SshHost, SshOptions};
use agentlab_ops::{Cmd, RemoteHost};
use futures::StreamExt;

#[tokio::main]
async fn main() -> agentlab_ops::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, key, known_hosts, n] = args.as_slice() else {
        eprintln!("usage: ssh_bench ssh://user@host:port KEY KNOWN_HOSTS N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N");
    let HostAddress::Ssh { user, host, port } =
        HostAddress::parse(addr).map_err(agentlab_ops::Error::config)?
    else {
        unreachable!("parse gives ssh addresses for ssh:// input")
    };
    let mut o = SshOptions::new(host, port);
    o.user = user;
    o.identity_file = Some(key.into());
    o.known_hosts = Some(known_hosts.into());
    o.config_file = Some("/dev/null".into());
    o.max_concurrent = 10;
    let h = SshHost::new("bench", o);
    let cmd = Cmd::new("true");

    let start = Instant::now();
    h.run(&cmd).await?.check("bench", &cmd)?;
    let connect = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..n {
        h.run(&cmd).await?.check("bench", &cmd)?;
    }
    let sequential = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..n)
        .map(|_| h.run(&cmd))
        .buffer_unordered(10)
        .collect()
        .await;
    for r in results {
        r?.check("bench", &cmd)?;
    }
    let fanout = start.elapsed().as_secs_f64();
    h.close().await?;
    println!("{connect:.3} {sequential:.3} {fanout:.3}");
    Ok(())
}
