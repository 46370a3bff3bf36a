//! `scalectl import` (issue 21): console-made groups read back as a policy
//! file. Auto Scaling through moto (groups, policies, scheduled actions),
//! CloudWatch's DescribeAlarms on recorded rpcv2Cbor answers (moto does not
//! speak the protocol the current SDK uses).

mod support;

use std::process::{Command, Output};

use aws_sdk_autoscaling::types::{PredefinedMetricSpecification, TargetTrackingConfiguration};
use aws_smithy_cbor::Encoder;
use functions::contract::start_moto;
use functions::policy::Policy;

fn scalectl(args: &[&str], endpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalectl"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        // moto answers 500 to some unknown names: nothing to wait for.
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run scalectl")
}

#[tokio::test]
async fn a_console_group_in_moto_is_imported_as_a_policy_that_validates() {
    let Some(moto) = start_moto() else { return };
    moto.create_group("shop", 2, 8, 3).await;
    let client = moto.autoscaling();
    client
        .put_scaling_policy()
        .auto_scaling_group_name("shop")
        .policy_name("shop-cpu-50")
        .policy_type("TargetTrackingScaling")
        .estimated_instance_warmup(120)
        .target_tracking_configuration(
            TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type("ASGAverageCPUUtilization".into())
                        .build(),
                )
                .target_value(50.0)
                .build(),
        )
        .send()
        .await
        .expect("target tracking policy");
    client
        .put_scaling_policy()
        .auto_scaling_group_name("shop")
        .policy_name("shop-add-2")
        .policy_type("SimpleScaling")
        .adjustment_type("ChangeInCapacity")
        .scaling_adjustment(2)
        .cooldown(300)
        .send()
        .await
        .expect("simple policy");
    client
        .put_scheduled_update_group_action()
        .auto_scaling_group_name("shop")
        .scheduled_action_name("lunch-out")
        .recurrence("0 11 * * 1-5")
        .time_zone("Asia/Shanghai")
        .min_size(4)
        .send()
        .await
        .expect("scheduled action");

    let out = std::env::temp_dir().join(format!("scalectl-import-{}.toml", std::process::id()));
    let output = scalectl(
        &["import", "--group", "shop", "--out", out.to_str().expect("utf-8")],
        &moto.endpoint,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out).expect("written");
    std::fs::remove_file(&out).ok();
    let policy = Policy::parse("imported", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let shop = policy.group("shop").expect("shop");
    assert_eq!((shop.min, shop.max, shop.desired), (2, 8, Some(3)));
    assert_eq!(shop.target_tracking.len(), 1, "{text}");
    assert_eq!(shop.target_tracking[0].target, 50.0);
    assert_eq!(shop.instance_warmup, Some(std::time::Duration::from_secs(120)));
    assert_eq!(shop.schedules.len(), 1, "{text}");
    assert_eq!(shop.schedules[0].cron.as_deref(), Some("cron(0 11 ? * MON-FRI *)"));
    assert_eq!(shop.schedules[0].timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(shop.schedules[0].min, Some(4));
    // The simple policy has no alarm: never acts; said, not dropped.
    assert!(
        stderr.contains("not imported: policy shop-add-2 of group shop: no alarm invokes it"),
        "{stderr}"
    );
    assert!(text.contains("# NOT IMPORTED: policy shop-add-2"), "{text}");
    assert!(stderr.contains("imported 1 group(s)"), "{stderr}");
    for source in ["shop-cpu-50", "lunch-out", "Auto Scaling group shop"] {
        assert!(text.contains(source), "{source}: {text}");
    }

    // A group that does not exist is named; nothing is written.
    let missing = std::env::temp_dir().join(format!("scalectl-import-missing-{}.toml", std::process::id()));
    let output = scalectl(
        &[
            "import",
            "--group",
            "shop",
            "--group",
            "nope",
            "--out",
            missing.to_str().expect("utf-8"),
        ],
        &moto.endpoint,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no Auto Scaling group named nope"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!missing.exists());
}

#[test]
fn bad_import_flags_name_the_flag() {
    for (args, expected) in [
        (vec!["import"], "--group <GROUPS>"),
        (
            vec!["import", "--group", ""],
            "allowed: a group name of 1 to 255 characters",
        ),
    ] {
        let output = scalectl(&args, "http://127.0.0.1:9");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `--parameters` to a path that cannot be written: named, and no policy file either.
#[tokio::test]
async fn a_parameters_file_that_cannot_be_written_is_named_and_nothing_is_left() {
    let Some(moto) = start_moto() else { return };
    moto.create_group("cart", 1, 4, 1).await;
    let dir = std::env::temp_dir().join(format!("import-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("cart.toml");
    let unwritable = dir.join("no-such-dir").join("params.json");
    let output = scalectl(
        &[
            "import",
            "--group",
            "cart",
            "--out",
            policy.to_str().expect("path"),
            "--parameters",
            unwritable.to_str().expect("path"),
        ],
        &moto.endpoint,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--parameters") && stderr.contains("cannot write (nothing written)"),
        "{stderr}"
    );
    assert!(!policy.exists(), "no policy file when the parameters cannot be written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// DescribeAlarms as CloudWatch answers it: a CPU alarm and a metric-math one.
fn describe_alarms() -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.map(1).str("MetricAlarms").array(2);
    e.map(11);
    e.str("AlarmName").str("shop-cpu-high");
    e.str("AlarmArn")
        .str("arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-cpu-high");
    e.str("MetricName").str("CPUUtilization");
    e.str("Namespace").str("AWS/EC2");
    e.str("Statistic").str("Average");
    e.str("Dimensions")
        .array(1)
        .map(2)
        .str("Name")
        .str("AutoScalingGroupName")
        .str("Value")
        .str("shop");
    e.str("Period").integer(300);
    e.str("EvaluationPeriods").integer(3);
    e.str("DatapointsToAlarm").integer(2);
    e.str("Threshold").double(70.0);
    e.str("ComparisonOperator").str("GreaterThanThreshold");
    e.map(3);
    e.str("AlarmName").str("shop-math");
    e.str("ComparisonOperator").str("GreaterThanThreshold");
    e.str("Metrics")
        .array(1)
        .map(2)
        .str("Id")
        .str("e1")
        .str("Expression")
        .str("m1 / m2");
    e.into_writer()
}

#[tokio::test]
async fn alarms_are_read_with_their_metric_or_as_metric_math() {
    let client =
        support::recorded_cloudwatch(|path, _| path.ends_with("/operation/DescribeAlarms").then(describe_alarms));
    let alarms = functions::import::alarms(&client, &["shop-cpu-high".into(), "shop-math".into()])
        .await
        .expect("alarms");
    assert_eq!(alarms.len(), 2);
    let cpu = &alarms[0];
    let metric = cpu.metric.as_ref().expect("one metric");
    assert_eq!(
        (metric.namespace.as_str(), metric.name.as_str(), metric.stat.as_str()),
        ("AWS/EC2", "CPUUtilization", "Average")
    );
    assert_eq!(
        metric.dimensions.get("AutoScalingGroupName").map(String::as_str),
        Some("shop")
    );
    assert_eq!(
        (cpu.period, cpu.evaluation_periods, cpu.datapoints_to_alarm),
        (300, 3, Some(2))
    );
    assert_eq!((cpu.threshold, cpu.comparison.as_str()), (70.0, "GreaterThanThreshold"));
    assert!(alarms[1].metric.is_none(), "metric math is not one metric");
}
