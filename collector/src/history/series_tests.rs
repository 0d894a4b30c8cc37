use super::*;

const MIN: Millis = 60_000;

fn sample(at: Millis, cpu: i64, disks: &str) -> MetricSample {
    MetricSample {
        tenant_id: "t".into(),
        agent_id: "a".into(),
        at,
        cpu_centipercent: cpu,
        memory_used_bytes: 1,
        memory_total_bytes: 4,
        swap_used_bytes: None,
        swap_total_bytes: None,
        load1_milli: 1500,
        load5_milli: 1000,
        load15_milli: 500,
        disks: disks.into(),
    }
}

fn root(used: i64, full_at: Option<Millis>) -> String {
    let m = MountSample {
        mount: "/".into(),
        used_bytes: used,
        total_bytes: 200,
        full_at,
    };
    serde_json::to_string(&[m]).expect("json")
}

#[test]
fn few_samples_come_back_as_they_are_with_the_latest_projection() {
    let samples = [
        sample(MIN, 1000, &root(100, Some(9 * MIN))),
        sample(2 * MIN, 2050, &root(150, Some(4 * MIN))),
        sample(3 * MIN, 3000, "[]"),
    ];
    let s = shape("a", 0, 10 * MIN, &samples, 500).expect("shape");
    assert_eq!(s.bucket_secs, None);
    assert_eq!(s.at_unix_secs, [60, 120, 180]);
    assert_eq!(s.cpu_percent, [10.0, 20.5, 30.0]);
    assert_eq!(s.memory_percent, [Some(25.0); 3]);
    assert_eq!(s.swap_percent, [None; 3]);
    assert_eq!((s.load1[0], s.load5[0], s.load15[0]), (1.5, 1.0, 0.5));
    assert_eq!(s.disks.len(), 1);
    let d = &s.disks[0];
    assert_eq!(d.used_percent, [Some(50.0), Some(75.0), None]);
    assert_eq!(d.total_bytes, 200);
    // From the latest sample that has the mount, not an older one.
    assert_eq!(
        d.projection,
        Some(Projection {
            from_unix_secs: 120,
            from_used_percent: 75.0,
            full_unix_secs: 240,
            full_at: 4 * MIN,
        })
    );
}

#[test]
fn no_projection_when_the_latest_sample_has_none() {
    let samples = [
        sample(MIN, 0, &root(100, Some(9 * MIN))),
        sample(2 * MIN, 0, &root(100, None)),
    ];
    let s = shape("a", 0, 10 * MIN, &samples, 500).expect("shape");
    assert_eq!(s.disks[0].projection, None);
}

#[test]
fn long_ranges_are_averaged_into_at_most_max_points() {
    // A week of one-minute samples, CPU alternating 10 % and 30 %.
    let week = 7 * 24 * 60;
    let samples: Vec<MetricSample> = (0..week)
        .map(|i| {
            sample(
                i * MIN,
                if i % 2 == 0 { 1000 } else { 3000 },
                &root(i % 200, None),
            )
        })
        .collect();
    let s = shape("a", 0, week * MIN, &samples, MAX_POINTS).expect("shape");
    assert!(
        s.at_unix_secs.len() <= MAX_POINTS,
        "{}",
        s.at_unix_secs.len()
    );
    assert!(s.at_unix_secs.len() >= MAX_POINTS - 1);
    // 10,080 minutes over 500 buckets: 20.16 min, rounded up to whole seconds.
    assert_eq!(s.bucket_secs, Some(1210));
    assert!(s.at_unix_secs.windows(2).all(|w| w[1] - w[0] == 1210));
    for cpu in &s.cpu_percent {
        assert!((19.0..=21.0).contains(cpu), "{cpu}");
    }
    assert_eq!(s.disks[0].used_percent.len(), s.at_unix_secs.len());
    assert_eq!(s.load1.len(), s.at_unix_secs.len());
}

#[test]
fn empty_buckets_make_no_point_and_absent_values_stay_absent() {
    let mut with_swap = sample(0, 1000, "[]");
    with_swap.swap_used_bytes = Some(1);
    with_swap.swap_total_bytes = Some(2);
    let mut no_memory = sample(1000, 3000, &root(200, None));
    no_memory.memory_total_bytes = 0;
    let samples = [with_swap, no_memory, sample(9_500, 2000, "[]")];
    // Buckets of 5 s: [0, 5 s) holds two samples, [5 s, 10 s) one.
    let s = shape("a", 0, 10_000, &samples, 2).expect("shape");
    assert_eq!(s.bucket_secs, Some(5));
    assert_eq!(s.at_unix_secs, [0, 5]);
    assert_eq!(s.cpu_percent, [20.0, 20.0]);
    assert_eq!(s.memory_percent, [Some(25.0), Some(25.0)]);
    assert_eq!(s.swap_percent, [Some(50.0), None]);
    assert_eq!(s.disks[0].used_percent, [Some(100.0), None]);
}

#[test]
fn corrupt_disks_are_an_error_naming_the_column() {
    let err = shape("a", 0, MIN, &[sample(0, 0, "{")], 10).expect_err("corrupt");
    assert!(err.to_string().contains("metric_samples.disks"), "{err}");
}

#[test]
fn nothing_to_show_is_empty_series() {
    let s = shape("a", 0, MIN, &[], 10).expect("shape");
    assert!(s.at_unix_secs.is_empty() && s.disks.is_empty());
}
