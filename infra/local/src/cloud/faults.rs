//! Faults an operator (or a test) injects: an instance killed or marked
//! unhealthy, an availability zone down and back.

use super::*;

impl Cloud {
    /// Fault: kill an instance's process with SIGKILL.
    pub fn kill(&self, instance: &str) -> Result<String> {
        for runtime in &self.inner.groups {
            if let Some(running) = runtime.children().get(instance) {
                signal(&running.child, libc::SIGKILL);
                return Ok(runtime.group().name.clone());
            }
        }
        Err(Error::NoSuchInstance(instance.to_string()))
    }

    /// Fault: mark an instance unhealthy (SetInstanceHealth): it is replaced.
    pub fn set_unhealthy(&self, instance: &str) -> Result<String> {
        for runtime in &self.inner.groups {
            let mut group = runtime.group();
            if group.instance(instance).is_some_and(|i| i.is_active()) {
                let name = group.name.clone();
                group
                    .mark_unhealthy(instance, "set unhealthy by the operator")
                    .map_err(|e| Error::group(&name, e))?;
                return Ok(name);
            }
        }
        Err(Error::NoSuchInstance(instance.to_string()))
    }

    /// Fault: an availability zone fails: its instances are killed and no
    /// launch goes there until [`Cloud::restore_az`].
    pub fn stop_az(&self, az: &str) -> Result<Vec<String>> {
        if !self.inner.config.azs.iter().any(|a| a == az) {
            return Err(Error::NoSuchAz {
                az: az.to_string(),
                azs: self.inner.config.azs.join(", "),
            });
        }
        let mut killed = Vec::new();
        for runtime in &self.inner.groups {
            let mut group = runtime.group();
            group.set_az_down(az, true);
            let ids: Vec<String> = group.active().filter(|i| i.az == az).map(|i| i.id.clone()).collect();
            drop(group);
            let children = runtime.children();
            for id in ids {
                if let Some(running) = children.get(&id) {
                    signal(&running.child, libc::SIGKILL);
                    killed.push(id);
                }
            }
        }
        Ok(killed)
    }

    /// An availability zone is back: launches may go there again.
    pub fn restore_az(&self, az: &str) -> Result<()> {
        if !self.inner.config.azs.iter().any(|a| a == az) {
            return Err(Error::NoSuchAz {
                az: az.to_string(),
                azs: self.inner.config.azs.join(", "),
            });
        }
        for runtime in &self.inner.groups {
            runtime.group().set_az_down(az, false);
        }
        Ok(())
    }
}
