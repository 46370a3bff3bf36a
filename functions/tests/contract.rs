//! The port contract: every adapter of `GroupPort` must pass these checks.
//! Runs against the in-memory cloud here; the local cloud and moto join as
//! their adapters land.

use functions::decide::{Instance, Lifecycle, Observation};
use functions::memory::MemoryCloud;
use functions::ports::{GroupPort, PortErrorKind};
use jiff::Timestamp;

/// Checks one adapter whose group `name` exists with min 1, max 5, desired 2.
pub async fn group_port_contract(port: &impl GroupPort, name: &str, since: Timestamp) {
    let observed = port.describe(name).await.expect("describe");
    assert_eq!((observed.min, observed.max, observed.desired), (1, 5, 2));

    port.set_desired(name, 4, "contract: out to 4")
        .await
        .expect("set desired");
    assert_eq!(port.describe(name).await.expect("describe").desired, 4);
    let activities = port.activities(name, since).await.expect("activities");
    assert!(
        activities
            .iter()
            .any(|a| a.cause == "contract: out to 4" && a.from == 2 && a.to == 4),
        "{activities:#?}"
    );

    // Outside min..=max: refused, not retryable, nothing changed.
    let error = port
        .set_desired(name, 6, "contract: too many")
        .await
        .expect_err("above max");
    assert_eq!(error.kind, PortErrorKind::Invalid);
    assert!(!error.retryable);
    assert!(
        error.to_string().contains("outside min..=max (1..=5)"),
        "{error}"
    );
    assert_eq!(port.describe(name).await.expect("describe").desired, 4);

    port.set_limits(name, 2, 8, 6, "contract: limits")
        .await
        .expect("set limits");
    let observed = port.describe(name).await.expect("describe");
    assert_eq!((observed.min, observed.max, observed.desired), (2, 8, 6));
    let error = port
        .set_limits(name, 3, 8, 9, "contract: bad limits")
        .await
        .expect_err("desired above max");
    assert_eq!(error.kind, PortErrorKind::Invalid);
    let observed = port.describe(name).await.expect("describe");
    assert_eq!(
        (observed.min, observed.max, observed.desired),
        (2, 8, 6),
        "nothing half-applied"
    );

    let error = port.describe("no-such-group").await.expect_err("unknown");
    assert_eq!(error.kind, PortErrorKind::NotFound);
    let error = port
        .set_desired("no-such-group", 1, "x")
        .await
        .expect_err("unknown");
    assert_eq!(error.kind, PortErrorKind::NotFound);
}

#[tokio::test]
async fn memory_cloud_meets_the_group_contract() {
    let since: Timestamp = "2026-11-20T00:00:00Z".parse().expect("since");
    let cloud = MemoryCloud::new("2026-11-20T11:00:00Z".parse().expect("now"));
    let instances = (0..2)
        .map(|i| Instance {
            id: format!("i-{i}"),
            lifecycle: Lifecycle::InService,
            launched_at: since,
            protected: i == 0,
        })
        .collect();
    cloud.put_group(
        "contract",
        Observation {
            min: 1,
            max: 5,
            desired: 2,
            instances,
        },
    );
    group_port_contract(&cloud, "contract", since).await;
    // The protected instance survived every scale-in.
    let observed = cloud.group("contract").expect("group");
    assert!(observed.instances.iter().any(|i| i.id == "i-0"));
}
