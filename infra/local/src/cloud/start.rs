//! Starting the cloud: the settings checked, the load balancers and the
//! control API bound, every group started at its desired capacity, the
//! functions' runtime and the long-running tasks started.

use super::*;

impl Cloud {
    /// Binds the load balancers and the control API, then starts every group at its desired capacity.
    pub async fn start(config: Config) -> Result<Self> {
        config.check()?;
        // Every instance logs there: a directory that exists but cannot be
        // written made every launch fail and retry each second forever
        // (issue 25.8). Refuse it at start.
        let probe = config.log_dir.join(".localcloud-write-test");
        std::fs::create_dir_all(&config.log_dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| Error::LogDir {
                path: config.log_dir.clone(),
                source,
            })?;
        let clock = config
            .start
            .map_or_else(|| Clock::new(config.speed), |at| Clock::starting_at(config.speed, at));
        let mut groups = Vec::new();
        let mut tasks = Vec::new();
        for (k, policy) in config.policy.groups.iter().enumerate() {
            if policy.warm_pool.is_some() {
                // Stricter than AWS, never more lenient: say so.
                tracing::warn!(
                    group = %policy.name,
                    "the group's warm pool is not modelled by the local cloud: every instance is launched and boots in full (--boot), where AWS would start an initialised one from the pool (the backtest models it: --warm-start)"
                );
            }
            let port = if config.lb_port == 0 {
                0
            } else {
                config.lb_port + k as u16
            };
            let (listener, lb_addr) = bind_loopback("load balancer", port).await?;
            let lb = LoadBalancer::new(config.lb);
            tasks.push(("load balancer", lb.serve(listener)));
            tasks.push(("health checker", lb.start_health_checks()));
            let subnet = [127, config.subnet[0], config.subnet[1].wrapping_add(k as u8)];
            groups.push(Arc::new(GroupRuntime {
                group: Mutex::new(Group::new(policy, config.azs.clone(), subnet)),
                lb,
                lb_addr,
                children: Mutex::new(HashMap::new()),
                backoff: Mutex::new(None),
            }));
        }
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(500)));
        let probe = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        let now = clock.now();
        let mut alarms: Vec<Alarm> = config
            .policy
            .groups
            .iter()
            .flat_map(|g| g.alarm_policies.iter().map(|p| Alarm::new(&g.name, p, now)))
            .collect();
        if let Some(shadow) = &config.shadow {
            alarms.extend(shadow.policy.groups.iter().flat_map(|g| {
                g.alarm_policies.iter().map(|p| {
                    let mut alarm = Alarm::new(&g.name, p, now);
                    alarm.shadow = true;
                    alarm
                })
            }));
        }
        // The control API is bound first: the functions are told its address.
        let (control_listener, control) = bind_loopback("control API", config.control_port).await?;
        let runtime = match (&config.functions, &config.policy_file) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Config {
                    field: "policy_file",
                    value: "none".into(),
                    allowed: "the policy file's path when functions run (they read it)",
                });
            }
            (Some(dir), Some(policy_file)) => {
                let policy_file = std::path::absolute(policy_file).unwrap_or_else(|_| policy_file.clone());
                let env = vec![
                    ("SCALER_POLICY".to_string(), policy_file.display().to_string()),
                    ("SCALER_LOCAL_CLOUD".to_string(), control.to_string()),
                    ("SCALER_CLOCK".to_string(), clock.to_env()),
                ];
                Some(Runtime::new(FUNCTION, dir, env, config.log_dir.clone(), clock).map_err(Error::Functions)?)
            }
        };
        let shadow = match (&config.functions, &config.shadow) {
            (_, None) => None,
            (None, Some(_)) => {
                return Err(Error::Config {
                    field: "shadow",
                    value: "a shadow policy without functions".into(),
                    allowed: "a shadow policy only when the functions run (it is their dry run)",
                });
            }
            (Some(dir), Some(shadow)) => {
                let file = std::path::absolute(&shadow.policy_file).unwrap_or_else(|_| shadow.policy_file.clone());
                let env = vec![
                    ("SCALER_POLICY".to_string(), file.display().to_string()),
                    ("SCALER_LOCAL_CLOUD".to_string(), control.to_string()),
                    ("SCALER_CLOCK".to_string(), clock.to_env()),
                    ("SCALER_DRY_RUN".to_string(), "1".to_string()),
                ];
                Some(Runtime::new(SHADOW_FUNCTION, dir, env, config.log_dir.clone(), clock).map_err(Error::Functions)?)
            }
        };
        let ingestion_delay = config.ingestion_delay;
        let cloud = Self {
            inner: Arc::new(Inner {
                config,
                clock,
                groups,
                spawner: Arc::new(Spawner::new()),
                store: Mutex::new(MetricStore::with_delay(ingestion_delay)),
                alarms: Mutex::new(alarms),
                runtime,
                shadow,
                events: Mutex::new(VecDeque::new()),
                probe,
                tasks: Tasks(Mutex::new(tasks)),
                control_addr: Mutex::new(Some(control)),
            }),
        };
        crate::control::serve(cloud.clone(), control_listener);
        for runtime in &cloud.inner.groups {
            let task = tokio::spawn(controller::controller(cloud.clone(), runtime.clone()));
            cloud.push_task("group controller", task);
            let task = tokio::spawn(sampler::sampler(cloud.clone(), runtime.clone()));
            cloud.push_task("metric sampler", task);
        }
        for runtime in cloud.inner.runtime.iter().chain(&cloud.inner.shadow) {
            let tasks = runtime
                .start(cloud.inner.spawner.clone())
                .await
                .map_err(|source| Error::Bind {
                    what: "Lambda Runtime API",
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    source,
                })?;
            for task in tasks {
                cloud.push_task("Lambda Runtime API", task);
            }
        }
        let task = tokio::spawn(events::events(cloud.clone()));
        cloud.push_task("event router", task);
        Ok(cloud)
    }
}
