//! The port contract (`functions::contract`) against the in-memory cloud
//! and, through the AWS adapter, moto; the local cloud runs it in
//! infra/local/tests.

use functions::contract::{group_port_contract, start_moto};
use functions::decide::{Instance, Lifecycle, Observation};
use functions::memory::MemoryCloud;
use jiff::Timestamp;

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

#[tokio::test]
async fn aws_adapter_meets_the_group_contract_against_moto() {
    let Some(moto) = start_moto() else { return };
    moto.create_group("contract", 1, 5, 2).await;
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    group_port_contract(&functions::aws::AwsGroups::new(moto.autoscaling()), "contract", since).await;
}
