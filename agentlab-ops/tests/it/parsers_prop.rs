//! Property tests: arbitrary bytes never panic the `uptime`/`free`/`df` parsers, the manifest
//! reader or the config loader, and always give a typed error when they do not parse; the
//! real-world fixtures keep parsing, also with noise around them.

use agentlab_ops::backup::manifest;
use agentlab_ops::backup::{BackupStore, MemoryBackupStore};
use agentlab_ops::host::parse::{parse_df, parse_free, parse_uptime};
use agentlab_ops::{Config, ErrorKind};
use proptest::prelude::*;

const UPTIME: &str = " 14:02:11 up 12 days,  3:04,  2 users,  load average: 0.38, 0.41, 0.40\n";
const FREE: &str = "               total        used        free      shared  buff/cache   available\nMem:        16310412     9950000     1200000      120000     5160412     6360412\nSwap:        2097148           0     2097148\n";
const DF: &str = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/root         30428648 12476680  17935584      42% /\n/dev/sdb1        103081248 53602368  44222608      55% /app\n";

fn typed(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidResponse | ErrorKind::Unexpected | ErrorKind::ConfigInvalid
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn host_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let errors = [parse_uptime(&text).err(), parse_free(&text).err(), parse_df(&text).err()];
        for e in errors.into_iter().flatten() {
            prop_assert!(typed(e.kind()), "{e}");
        }
    }

    #[test]
    fn fixtures_parse_with_trailing_noise(noise in "[ -~\n]{0,80}") {
        let up = parse_uptime(&format!("{UPTIME}{noise}"));
        prop_assert!(up.is_ok() || noise.contains("load average"), "{:?}", up);
        let free = parse_free(&format!("{FREE}{noise}"));
        prop_assert!(free.is_ok() || noise.contains("Mem:"), "{free:?}");
        let df = parse_df(DF).unwrap();
        prop_assert_eq!(df.len(), 2);
    }

    #[test]
    fn the_manifest_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = MemoryBackupStore::new();
            store.put("s/20261128/MANIFEST.jsonl", bytes::Bytes::from(bytes)).await.unwrap();
            match manifest::open(&store, "s/20261128/MANIFEST.jsonl").await {
                Err(e) => assert!(typed(e.kind()), "{e}"),
                Ok((_, entries)) => {
                    use futures::StreamExt;
                    let all: Vec<_> = entries.collect().await;
                    for r in all {
                        if let Err(e) = r {
                            assert!(typed(e.kind()), "{e}");
                            assert!(e.to_string().contains("MANIFEST.jsonl"), "{e}");
                        }
                    }
                }
            }
        });
    }

    #[test]
    fn the_config_loader_never_panics(text in "[\\[\\]a-z_=\"0-9.%\n ]{0,300}") {
        if let Err(e) = Config::from_toml_str(&text, "fuzz.toml") {
            prop_assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e);
        }
    }
}

#[test]
fn the_real_fixtures_parse() {
    let u = parse_uptime(UPTIME).unwrap();
    assert!((u.load.one - 0.38).abs() < 1e-9);
    let m = parse_free(FREE).unwrap();
    assert!(m.total > 0 && m.available <= m.total);
    assert_eq!(parse_df(DF).unwrap()[1].mount, "/app");
}
