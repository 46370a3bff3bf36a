//! The port contract: what every adapter of [`GroupPort`] must do, as one
//! check each adapter's tests call (the in-memory cloud and moto in
//! `functions/tests/contract.rs`, the local cloud in `infra/local/tests`).
//! It panics with the failed expectation, like a test.

use jiff::Timestamp;

use crate::ports::{GroupPort, PortErrorKind};

/// Checks one adapter whose group `name` exists with min 1, max 5, desired 2.
#[allow(clippy::missing_panics_doc)]
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
    assert!(error.to_string().contains("outside min..=max (1..=5)"), "{error}");
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
    let error = port.set_desired("no-such-group", 1, "x").await.expect_err("unknown");
    assert_eq!(error.kind, PortErrorKind::NotFound);
}
