//! List every object under a prefix through `S3BackupStore` and report count, bytes, time and
//! peak memory. Used by `benches/s3_list.sh` beside boto3's paginator on the same server.
//!
//! `cargo run --release --example s3_list -- ENDPOINT BUCKET PREFIX` (credentials from the
//! standard AWS chain).

use std::time::Instant;

use agentlab_ops::backup::{BackupStore, S3BackupStore, S3Options};
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> agentlab_ops::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, bucket, prefix] = args.as_slice() else {
        eprintln!("usage: s3_list ENDPOINT BUCKET PREFIX");
        std::process::exit(2);
    };
    let mut o = S3Options::new(bucket.clone());
    o.endpoint_url = Some(endpoint.clone());
    o.force_path_style = true;
    o.region = Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()));
    let store = S3BackupStore::connect(o).await?;
    let start = Instant::now();
    let (count, bytes) = store
        .list(prefix)
        .try_fold(
            (0u64, 0u64),
            |(n, b), m| async move { Ok((n + 1, b + m.size)) },
        )
        .await?;
    let secs = start.elapsed().as_secs_f64();
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .unwrap_or_default();
    println!("{count} {bytes} {secs:.3} {peak_kb}");
    Ok(())
}
