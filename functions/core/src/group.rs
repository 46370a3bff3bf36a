//! What an Auto Scaling group does on scale-in, once (issue 19): the local
//! cloud, the in-memory cloud and the backtest all terminate by
//! [`termination_order`]; and how big its warm pool is ([`warm_pool_size`]).

use jiff::Timestamp;

/// An instance as the termination policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub id: &'a str,
    /// Its availability zone ("" where a model has none: one zone).
    pub az: &'a str,
    pub launched_at: Timestamp,
    /// Protected from scale-in: never chosen.
    pub protected: bool,
}

/// The termination policy the template gives every group
/// (`TerminationPolicies: ["OldestInstance"]`, functions/src/cfn/groups.rs), as
/// EC2 Auto Scaling applies it ("Configure termination policies for Amazon
/// EC2 Auto Scaling"): zone balance first ("maintaining zonal balance takes
/// precedence over the termination policy": the zone with the most
/// instances that has an unprotected one), then the oldest instance, never
/// one protected from scale-in. A pending instance is an instance: it is
/// not chosen before older ones in service, so scale-in during a scale-out
/// removes serving capacity, as on AWS. Ties (same zone size, same launch
/// second) go to the lowest id, one of the choices AWS could make.
///
/// Returns the indexes into `candidates` of up to `count` instances, in
/// order; fewer when only protected ones are left.
pub fn termination_order(candidates: &[Candidate<'_>], count: usize) -> Vec<usize> {
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    let mut victims = Vec::with_capacity(count.min(candidates.len()));
    while victims.len() < count {
        let per_az = |az: &str| left.iter().filter(|&&i| candidates[i].az == az).count();
        let Some(victim) = left
            .iter()
            .copied()
            .filter(|&i| !candidates[i].protected)
            .max_by(|&a, &b| {
                let (a, b) = (&candidates[a], &candidates[b]);
                per_az(a.az)
                    .cmp(&per_az(b.az))
                    .then(b.launched_at.cmp(&a.launched_at))
                    .then(b.id.cmp(a.id))
            })
        else {
            break;
        };
        left.retain(|&i| i != victim);
        victims.push(victim);
    }
    victims
}

/// Removes from `instances` the `count` that [`termination_order`] picks
/// (fewer when only protected ones are left) and returns them, in the
/// order picked; `candidate` says how each looks to the policy.
pub fn remove_for_scale_in<T>(instances: &mut Vec<T>, count: usize, candidate: impl Fn(&T) -> Candidate<'_>) -> Vec<T> {
    let order = {
        let candidates: Vec<Candidate<'_>> = instances.iter().map(candidate).collect();
        termination_order(&candidates, count)
    };
    let mut slots: Vec<Option<T>> = instances.drain(..).map(Some).collect();
    // termination_order picks each index at most once.
    let removed = order.iter().filter_map(|&index| slots[index].take()).collect();
    instances.extend(slots.into_iter().flatten());
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_794_787_200 + second).expect("time")
    }

    fn candidate(id: &'static str, az: &'static str, launched: i64, protected: bool) -> Candidate<'static> {
        Candidate {
            id,
            az,
            launched_at: at(launched),
            protected,
        }
    }

    /// Named cases of AWS's rules with the template's OldestInstance policy.
    #[test]
    fn zone_balance_then_the_oldest_never_a_protected_one() {
        let cases: [(&str, Vec<Candidate<'static>>, usize, Vec<&str>); 5] = [
            (
                "one zone: the oldest first",
                vec![
                    candidate("i-b", "", 20, false),
                    candidate("i-a", "", 10, false),
                    candidate("i-c", "", 30, false),
                ],
                2,
                vec!["i-a", "i-b"],
            ),
            (
                "the fuller zone first, even when the other has the oldest",
                vec![
                    candidate("i-1", "a", 0, false),
                    candidate("i-2", "b", 10, false),
                    candidate("i-3", "b", 20, false),
                ],
                1,
                vec!["i-2"],
            ),
            (
                "a zone of only protected instances is passed over",
                vec![
                    candidate("i-1", "a", 0, true),
                    candidate("i-2", "a", 5, true),
                    candidate("i-3", "b", 10, false),
                ],
                2,
                vec!["i-3"],
            ),
            (
                // OldestInstance knows no lifecycle: an instance still
                // booting stays, the older one serving goes.
                "a pending instance is not preferred",
                vec![
                    candidate("i-old", "", 0, false),
                    candidate("i-booting", "", 3_000, false),
                ],
                1,
                vec!["i-old"],
            ),
            (
                "same launch second: the lowest id",
                vec![candidate("i-9", "", 0, false), candidate("i-1", "", 0, false)],
                1,
                vec!["i-1"],
            ),
        ];
        for (name, candidates, count, expected) in cases {
            let got: Vec<&str> = termination_order(&candidates, count)
                .into_iter()
                .map(|i| candidates[i].id)
                .collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn scale_in_removes_the_picked_instances_in_pick_order() {
        let mut instances = vec![
            ("i-new", 30, false),
            ("i-old", 10, false),
            ("i-kept", 0, true),
            ("i-mid", 20, false),
        ];
        let removed = remove_for_scale_in(&mut instances, 2, |&(id, launched, protected)| Candidate {
            id,
            az: "",
            launched_at: at(launched),
            protected,
        });
        assert_eq!(removed.iter().map(|i| i.0).collect::<Vec<_>>(), ["i-old", "i-mid"]);
        assert_eq!(instances.iter().map(|i| i.0).collect::<Vec<_>>(), ["i-new", "i-kept"]);
    }
}

/// How many instances a group's warm pool keeps beside `desired` in
/// service ("Warm pools for Amazon EC2 Auto Scaling", `PutWarmPool`):
/// `MaxGroupPreparedCapacity` (default the group's max) less the desired
/// capacity, and at least `MinSize`.
pub fn warm_pool_size(pool: &crate::policy::WarmPool, group_max: u32, desired: u32) -> u32 {
    let prepared = pool.max_group_prepared_capacity.unwrap_or(group_max);
    prepared.saturating_sub(desired).max(pool.min_size)
}

#[cfg(test)]
mod warm_pool_tests {
    use super::*;
    use crate::policy::{PoolState, WarmPool};

    /// PutWarmPool: "If a value for MaxGroupPreparedCapacity is not
    /// specified, Amazon EC2 Auto Scaling launches and maintains the
    /// difference between the group's maximum capacity and its desired
    /// capacity"; MinSize is the fewest it keeps.
    #[test]
    fn the_pool_is_prepared_capacity_less_desired_and_at_least_min_size() {
        let pool = |min_size, prepared| WarmPool {
            min_size,
            max_group_prepared_capacity: prepared,
            pool_state: PoolState::Stopped,
            reuse_on_scale_in: false,
        };
        assert_eq!(warm_pool_size(&pool(0, None), 10, 2), 8);
        assert_eq!(warm_pool_size(&pool(0, None), 10, 10), 0);
        assert_eq!(warm_pool_size(&pool(3, None), 10, 10), 3);
        assert_eq!(warm_pool_size(&pool(0, Some(6)), 10, 2), 4);
        assert_eq!(warm_pool_size(&pool(1, Some(6)), 10, 8), 1);
    }
}
