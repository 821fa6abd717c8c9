//! Retention schedules on a virtual clock, against the real server and SQLite: an event one
//! second past its shortest applicable schedule is deleted, one second before it is kept;
//! every sweep is audited and counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use consentry_collector::clock::Clock;
use hyper::http::Method;
use serde_json::Value;
use support::{batch_of, track, uuid, TestServer};

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_800_000_000_000;

async fn ids(server: &TestServer) -> Vec<String> {
    server
        .events()
        .await
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn sweep(server: &TestServer) -> Value {
    let reply = server.admin(Method::POST, "/v1/retention/sweep", "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

#[tokio::test]
async fn an_event_one_second_past_its_shortest_schedule_is_gone_and_one_second_before_is_kept() {
    let clock = Clock::manual(T0);
    let server = TestServer::start_with({
        let clock = clock.clone();
        move |s| {
            s.clock = clock;
            s.rights.retention.rules = vec![
                "analytics=400d".parse().unwrap(),
                "environment:demo=500d".parse().unwrap(),
                "purpose:advertising=90d".parse().unwrap(),
            ];
        }
    })
    .await;
    let (early, late, essential, both) = (uuid(1), uuid(2), uuid(3), uuid(4));
    server
        .post_batch(&batch_of(vec![
            track(&early, &["analytics"]),
            track(&essential, &["necessary"]),
            track(&both, &["necessary", "analytics"]),
        ]))
        .await;
    clock.advance(2000);
    server
        .post_batch(&batch_of(vec![track(&late, &["analytics"])]))
        .await;
    assert_eq!(ids(&server).await.len(), 4);

    clock.set(T0 + 400 * DAY_MS - 1000);
    assert_eq!(sweep(&server).await["deleted"]["events"], 0);
    assert_eq!(ids(&server).await.len(), 4);

    // The first batch is now one second past 400 days, the second one second before.
    clock.set(T0 + 400 * DAY_MS + 1000);
    assert_eq!(sweep(&server).await["deleted"]["events"], 2);
    assert_eq!(ids(&server).await, [essential.clone(), late.clone()]);

    // The second batch, received two seconds later, goes one second past its 400 days.
    clock.set(T0 + 400 * DAY_MS + 3000);
    assert_eq!(sweep(&server).await["deleted"]["events"], 1);
    assert_eq!(ids(&server).await, vec![essential.clone()]);

    // The environment's 500 days reach the essential event last.
    clock.set(T0 + 500 * DAY_MS - 1000);
    sweep(&server).await;
    assert_eq!(ids(&server).await, vec![essential.clone()]);
    clock.set(T0 + 500 * DAY_MS + 1000);
    sweep(&server).await;
    assert_eq!(ids(&server).await, Vec::<String>::new());

    let audit = server
        .admin(Method::GET, "/v1/audit?limit=1000", "")
        .await
        .json();
    let sweeps: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "retention.sweep" && e["actor"] == "system")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        sweeps,
        [
            "events=0 exports=0",
            "events=2 exports=0",
            "events=1 exports=0",
            "events=0 exports=0",
            "events=1 exports=0"
        ]
    );
    let metrics = server.admin(Method::GET, "/metrics", "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("consentry_retention_deleted_total{kind=\"events\"} 4"),
        "{text}"
    );
    assert!(text.contains("consentry_retention_sweeps_total 5"));

    // A viewer may not sweep.
    let (_, viewer) = server.token("viewer", "grafana").await;
    let refused = server
        .bearer(&viewer, Method::POST, "/v1/retention/sweep", "")
        .await;
    assert_eq!(refused.status, 403);
}

#[test]
fn schedules_come_from_flags_and_a_file_and_bad_ones_stop_the_start() {
    use clap::Parser;
    use consentry_collector::config::{Cli, Settings};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retention.conf");
    std::fs::write(
        &file,
        "# per purpose\nadvertising=90d\nenvironment:staging=30d\n",
    )
    .unwrap();
    let parse = |extra: &[&str]| {
        let cli = Cli::try_parse_from(
            [
                "consentry-collector",
                "--api-key",
                "demo=pk",
                "--generate-encryption-key",
            ]
            .iter()
            .chain(extra.iter()),
        )
        .map_err(|e| e.to_string())?;
        Settings::from_cli(cli).map_err(|e| e.to_string())
    };
    let file_arg = file.to_string_lossy().into_owned();
    let settings = parse(&[
        "--retention",
        "analytics=400d",
        "--retention-file",
        &file_arg,
    ])
    .unwrap();
    assert_eq!(settings.rights.retention.rules.len(), 3);
    assert!(parse(&["--retention", "analytics=forever"])
        .unwrap_err()
        .contains("retention"));
    std::fs::write(&file, "analytics=1y\n").unwrap();
    assert!(parse(&["--retention-file", &file_arg])
        .unwrap_err()
        .contains("line 1"));
}
