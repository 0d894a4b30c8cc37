//! Metric history end to end: a real agent reporting every second to a
//! collector that keeps one sample per second (`[retention]
//! metric_sample_secs = 1`), with a tmpfs filling steadily so the disk
//! check projects a time-to-full. `GET /api/v1/agents/{id}/metrics` shows
//! the samples as chart series with sane values and the projection; another
//! tenant's key gets 404, and a malformed time is a 400 naming the field.

mod common;

use std::time::Duration;

use common::fill::Filler;
use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};
use serde_json::Value;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_become_chart_series_scoped_to_their_tenant() {
    let collector = Collector::start_with_config("[retention]\nmetric_sample_secs = 1\n");
    let mnt = Tmpfs::mount("32m");
    let item = mnt.path().to_str().expect("utf-8").to_string();
    let home = AgentHome::new(&format!(
        "[checks.disk]\nmounts = [{item:?}]\ntrend_sample_secs = 1\ntrend_min_span_secs = 3\n\
         trend_min_used_percent = 0.0\n"
    ));
    // A heartbeat every second (AgentHome writes 15).
    let config = std::fs::read_to_string(&home.config).expect("agent config");
    std::fs::write(
        &home.config,
        config.replacen("interval_secs = 15", "interval_secs = 1", 1),
    )
    .expect("agent config");
    let agent_id = enroll_ok(&collector, &home, "default");
    let _agent = home.run();

    // Fill ~640 KiB/s, never past 22 MiB of 32: a steady trend.
    let filler = Filler::start(mnt.path().join("growing.log"), 176);

    let path = format!("/api/v1/agents/{agent_id}/metrics");
    let series = eventually(
        Duration::from_secs(60),
        "two samples and a time-to-full projection",
        || async {
            let v = collector.get(&path).await;
            let enough = v["at_unix_secs"].as_array().is_some_and(|a| a.len() >= 2);
            let projected = v["disks"].as_array().is_some_and(|ds| {
                ds.iter()
                    .any(|d| d["mount"] == item.as_str() && d["projection"].is_object())
            });
            (enough && projected).then_some(v)
        },
    )
    .await;
    filler.stop();

    // One sample per second at most: the times strictly increase.
    let at = numbers(&series["at_unix_secs"]);
    assert!(at.windows(2).all(|w| w[1] > w[0]), "{at:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        at.iter().all(|t| (now - 120.0..=now + 1.0).contains(t)),
        "{at:?} vs {now}"
    );
    assert_eq!(
        series["bucket_secs"],
        Value::Null,
        "a few samples come as they are"
    );
    for cpu in numbers(&series["cpu_percent"]) {
        assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
    }
    for mem in numbers(&series["memory_percent"]) {
        assert!(mem > 0.0 && mem <= 100.0, "memory {mem}");
    }
    for key in ["load1", "load5", "load15"] {
        let loads = numbers(&series[key]);
        assert_eq!(loads.len(), at.len(), "{key}");
        assert!(loads.iter().all(|l| *l >= 0.0), "{key} {loads:?}");
    }
    let disk = series["disks"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["mount"] == item.as_str()))
        .expect("the tmpfs in the series");
    let used = numbers(&disk["used_percent"]);
    assert_eq!(used.len(), at.len());
    assert!(used.iter().all(|u| (0.0..=70.0).contains(u)), "{used:?}");
    assert_eq!(disk["total_bytes"], 32 * 1024 * 1024);
    let p = &disk["projection"];
    let (from, full) = (
        p["from_unix_secs"].as_f64().expect("from"),
        p["full_unix_secs"].as_f64().expect("full"),
    );
    assert!(at.contains(&from), "the projection starts at a sample: {p}");
    // ~22 MiB left at ~640 KiB/s: well under an hour, and in the future.
    assert!(full > from && full < from + 3600.0, "{p}");
    assert!(
        p["full_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{p}"
    );

    // Another tenant's key: the agent does not exist for it.
    let out = collector.cli(&["tenant", "add", "globex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = collector.cli_json(&[
        "api-key",
        "create",
        "--name",
        "globex-admin",
        "--tenant",
        "globex",
        "--role",
        "admin",
        "--json",
    ]);
    let key = key["key"].as_str().expect("key");
    let (status, body) = collector.get_with(key, &path).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains(&item), "{body}");

    // A range before anything was sampled is empty; a bad time is named.
    let early = collector
        .get(&format!(
            "{path}?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z"
        ))
        .await;
    assert_eq!(early["at_unix_secs"], serde_json::json!([]));
    let (status, body) = collector
        .get_with(&collector.api_key, &format!("{path}?from=yesterday"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("from"), "{body}");
}
