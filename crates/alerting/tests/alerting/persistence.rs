//! Restarts: alerts, silences, the notification log and the history survive; no duplicate
//! notification after a restart; damaged files are reported, torn tails repaired; the on-disk
//! format is pinned by a hand-built fixture.

use std::io::Write;
use std::sync::Arc;

use jiff::Timestamp;
use watchfire_alerting::{Alerting, Error, HistoryQuery, Options, RecordingNotifier};

use crate::common::*;

const CFG: &str = "route:\n  receiver: r\n  group_wait: 1s\n  group_interval: 10s\n  repeat_interval: 1h\nreceivers:\n- name: r\n  webhook_configs:\n  - url: http://127.0.0.1:1/\n";

#[tokio::test(start_paused = true)]
async fn restart_keeps_alerts_silences_nflog_and_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start: Timestamp = DEFAULT_START.parse().expect("instant");
    let h = Harness::with(CFG, start, Some(dir.path().to_path_buf()));
    h.until(1.0).await;
    h.push(vec![
        alert(&[("alertname", "a")]).build(),
        alert(&[("alertname", "muted")]).build(),
    ]);
    let sid = h
        .alerting
        .set_silence(watchfire_alerting::Silence {
            id: String::new(),
            matchers: vec![watchfire_alerting::SilenceMatcher {
                name: "alertname".into(),
                value: "muted".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: h.at(1.0),
            ends_at: h.at(3600.0),
            updated_at: watchfire_alerting::types::ZERO_TIME,
            created_by: "me".into(),
            comment: "maintenance".into(),
            annotations: Default::default(),
        })
        .expect("valid silence");
    h.until(2.5).await;
    let first = h.take();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].group.alerts.len(), 1, "the silenced alert is not sent");
    h.alerting.shutdown();
    let origin = h.origin;
    drop(h);

    // Restart at t=5 with the same data directory.
    tokio::time::sleep_until(origin + std::time::Duration::from_secs(5)).await;
    let h = Harness::resume(CFG, start, origin, Some(dir.path().to_path_buf()));
    assert_eq!(h.alerting.alerts().len(), 2, "alerts survive");
    assert!(h.alerting.silences().iter().any(|s| s.id == sid), "silences survive");
    assert_eq!(
        h.alerting.history(&HistoryQuery::default()).len(),
        1,
        "history survives"
    );
    // The old alert flushes at once after the restart, and the log suppresses a duplicate.
    h.until(30.0).await;
    assert!(h.take().is_empty(), "no duplicate notification after the restart");
    // Resolving still notifies, because the log knows what was sent before the restart.
    h.push(vec![alert(&[("alertname", "a")]).active(&h, 1.0, Some(31.0)).build()]);
    h.until(46.0).await;
    let got = h.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].group.reason.as_str(),
        "all alerts resolved",
        "the other alert is silenced"
    );
    assert!(got[0].group.alerts[0].resolved_at(got[0].group.now));
    h.alerting.shutdown();
}

#[tokio::test(start_paused = true)]
async fn torn_tail_is_repaired_and_corruption_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start: Timestamp = DEFAULT_START.parse().expect("instant");
    {
        let h = Harness::with(CFG, start, Some(dir.path().to_path_buf()));
        h.push(vec![
            alert(&[("alertname", "a")]).build(),
            alert(&[("alertname", "b")]).build(),
        ]);
        h.alerting.shutdown();
    }
    let path = dir.path().join("alerts.log");
    let good = std::fs::read(&path).expect("alerts.log exists");
    // A crash mid-write: a record cut short.
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).expect("write");
    drop(f);
    {
        let h = Harness::with(CFG, start, Some(dir.path().to_path_buf()));
        assert_eq!(h.alerting.alerts().len(), 2, "whole records are kept");
        h.alerting.shutdown();
    }
    assert_eq!(std::fs::read(&path).expect("read"), good, "the torn tail was truncated");

    // A flipped byte inside the first record (not the last): reported, with the offset.
    let mut bad = good.clone();
    bad[20] ^= 0x55;
    std::fs::write(&path, &bad).expect("write");
    let e = Alerting::open(
        config(CFG),
        Options {
            data_dir: Some(dir.path().to_path_buf()),
            ..Options::default()
        },
        Arc::new(RecordingNotifier::new()),
        &prometheus::Registry::new(),
    )
    .unwrap_err();
    match e {
        Error::Corrupt { offset, ref reason, .. } => {
            assert_eq!(offset, 8, "the first record starts after the 8-byte header");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected a corruption error, got {other}"),
    }
    // Not a state file at all.
    std::fs::write(&path, b"hello world, not ours").expect("write");
    let e = Alerting::open(
        config(CFG),
        Options {
            data_dir: Some(dir.path().to_path_buf()),
            ..Options::default()
        },
        Arc::new(RecordingNotifier::new()),
        &prometheus::Registry::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("bad magic"), "{e}");
}

/// The version 1 record format, built by hand from FORMAT.md: a file written by this code
/// today must stay readable.
#[tokio::test(start_paused = true)]
async fn format_v1_fixture_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = b"WFAL\x01\x02\x00\x00".to_vec();
    let rec = br#"{"put":{"id":"0e2a1b52-6a8c-4f3e-9a55-1c2d3e4f5a6b","matchers":[{"name":"alertname","value":"Foo","isRegex":false,"isEqual":true}],"startsAt":"2024-01-01T00:00:00.000Z","endsAt":"2099-01-01T00:00:00.000Z","updatedAt":"2024-01-01T00:00:00.000Z","createdBy":"fixture","comment":"kept since v1"}}"#;
    file.extend_from_slice(&(rec.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32(rec).to_le_bytes());
    file.extend_from_slice(rec);
    std::fs::write(dir.path().join("silences.log"), &file).expect("write");
    let h = Harness::with(
        CFG,
        DEFAULT_START.parse().expect("instant"),
        Some(dir.path().to_path_buf()),
    );
    let s = h.alerting.silences();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].comment, "kept since v1");
    assert_eq!(s[0].matchers[0].value, "Foo");
}

/// CRC-32 (IEEE), bit by bit, independent of the implementation under test.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
