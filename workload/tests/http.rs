//! Every route through the real app (`routes::configure`), in process.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{App, test, web};
use clap::Parser;
use serde_json::Value;
use workload::AppState;
use workload::config::{Args, Config};
use workload::identity::Identity;

fn state(extra: &[&str]) -> web::Data<AppState> {
    let args = Args::try_parse_from(
        ["workload", "--compute-nice", "0"]
            .into_iter()
            .chain(extra.iter().copied()),
    )
    .expect("args");
    let config = Config::from_args(args);
    let identity = Identity {
        instance_id: "i-0123456789abcdef0".into(),
        host: "web-1".into(),
        private_ip: "127.0.1.7".parse().expect("ip"),
        availability_zone: Some("local-1a".into()),
    };
    web::Data::new(AppState::start(&config, identity).expect("state"))
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(App::new().configure(workload::routes::configure($state.clone()))).await
    };
}

async fn body_text(response: actix_web::dev::ServiceResponse) -> String {
    String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8")
}

/// Waits (bounded) until the pool shows `running` and `queued` jobs.
async fn wait_for_pool(state: &AppState, running: usize, queued: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = state.pool.snapshot();
        if snapshot.running == running && snapshot.queued == queued {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool never reached {running} running / {queued} queued: {snapshot:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
}

#[actix_web::test]
async fn index_answers_like_the_reference() {
    let state = state(&[]);
    let app = app!(state);
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "I am healthy");
}

#[actix_web::test]
async fn fibo_answers_the_reference_text() {
    let state = state(&[]);
    let app = app!(state);
    let response = test::call_service(&app, test::TestRequest::get().uri("/fibo/30").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_text(response).await,
        "Fibo(30) = 1346269 \nComputed by web-1 with private ip 127.0.1.7 \n"
    );
}

#[actix_web::test]
async fn fibo_answers_json_when_asked() {
    let state = state(&[]);
    let app = app!(state);
    let request = test::TestRequest::get()
        .uri("/fibo/35")
        .insert_header((header::ACCEPT, "application/json"))
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, request).await;
    assert_eq!(body["n"], 35);
    assert_eq!(body["fibo"], 14_930_352);
    assert_eq!(body["host"], "web-1");
    assert_eq!(body["private_ip"], "127.0.1.7");
    assert_eq!(body["instance_id"], "i-0123456789abcdef0");
    assert!(body["compute_ms"].as_f64().expect("compute_ms") > 0.0);
}

#[actix_web::test]
async fn every_bad_n_gets_400_naming_the_range() {
    let state = state(&["--max-n", "30"]);
    let app = app!(state);
    let cases = [
        ("word", "/fibo/abc"),
        ("negative", "/fibo/-1"),
        ("exponent", "/fibo/1e9"),
        ("huge", "/fibo/99999999999999999999"),
        ("above max", "/fibo/31"),
        ("fraction", "/fibo/2.5"),
        ("unicode", "/fibo/%E4%B8%80"),
        ("arabic digit", "/fibo/%D9%A3"),
        ("invalid utf-8", "/fibo/%FF"),
        ("space", "/fibo/%203"),
        ("empty", "/fibo/"),
        ("no segment", "/fibo"),
    ];
    for (name, uri) in cases {
        let response = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        let text = body_text(response).await;
        assert!(text.contains("0..=30"), "{name}: {text}");
    }
    // The JSON form names the field and the allowed values.
    let request = test::TestRequest::get()
        .uri("/fibo/abc")
        .insert_header((header::ACCEPT, "application/json"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&test::read_body(response).await).expect("json");
    assert_eq!(body["field"], "n");
    assert_eq!(body["allowed"], "0..=30");
    assert_eq!(body["error"], "invalid n \"abc\": n must be an integer in 0..=30");
}

#[actix_web::test]
async fn unknown_routes_and_methods() {
    let state = state(&[]);
    let app = app!(state);
    let response = test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body_text(response).await.contains("GET /fibo/{n}"));
    let response = test::call_service(&app, test::TestRequest::post().uri("/fibo/3").to_request()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn health_reports_identity_and_load() {
    let state = state(&["--cpu-limit", "0.5"]);
    let app = app!(state);
    let body: Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["instance_id"], "i-0123456789abcdef0");
    assert_eq!(body["host"], "web-1");
    assert_eq!(body["private_ip"], "127.0.1.7");
    assert_eq!(body["availability_zone"], "local-1a");
    assert_eq!(body["in_flight"], 1, "the health request itself");
    assert_eq!(body["cpu_limit_cores"], 0.5);
    assert_eq!(body["cpu_capacity_cores"], 0.5);
    let cpu = body["cpu_utilization_percent"].as_f64().expect("cpu");
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    assert!(body["uptime_s"].as_f64().expect("uptime") >= 0.0);
    assert_eq!(body["compute"]["workers"], 1);
}

#[actix_web::test]
async fn full_pool_sheds_with_503_and_retry_after_while_health_stays_up() {
    // No shed delay here: the 503 itself must not wait (the delay has its own test).
    let state = state(&["--compute-workers", "1", "--queue", "1", "--shed-delay", "0s"]);
    let app = app!(state);
    // Occupy the worker and the one queue slot with long computations.
    let first = test::call_service(&app, test::TestRequest::get().uri("/fibo/36").to_request());
    let second = test::call_service(&app, test::TestRequest::get().uri("/fibo/36").to_request());
    let check = async {
        wait_for_pool(&state, 1, 1).await;
        let started = Instant::now();
        let response = test::call_service(&app, test::TestRequest::get().uri("/fibo/1").to_request()).await;
        let shed_in = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let retry_after: u64 = response
            .headers()
            .get(header::RETRY_AFTER)
            .expect("Retry-After")
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!(retry_after >= 1);
        assert!(body_text(response).await.contains("overloaded"));
        assert!(shed_in < Duration::from_secs(1), "shedding must not wait: {shed_in:?}");
        // Health and metrics answer while the pool is saturated.
        let body: Value =
            test::call_and_read_body_json(&app, test::TestRequest::get().uri("/health").to_request()).await;
        assert_eq!(body["compute"]["running"], 1);
        assert_eq!(body["compute"]["queued"], 1);
        assert_eq!(body["compute"]["shed"], 1);
        let response = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = body_text(response).await;
        assert!(
            text.contains(r#"workload_compute_shed_total{reason="queue_full"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"workload_compute_shed_total{reason="over_budget"} 0"#),
            "{text}"
        );
        assert!(text.contains("workload_compute_demand_total 3"), "{text}");
    };
    let (first, second, ()) = tokio::join!(first, second, check);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
}

#[actix_web::test]
async fn over_budget_is_shed_after_the_shed_delay_and_health_answers_meanwhile() {
    // Issue 24: a request whose expected wait is over the budget (here 0 s:
    // only a free worker takes one) gets its 503 no sooner than --shed-delay,
    // so a closed-loop client cannot spin; /health does not wait behind it.
    let state = state(&[
        "--compute-workers",
        "1",
        "--queue-budget",
        "0s",
        "--shed-delay",
        "300ms",
    ]);
    let app = app!(state);
    let first = test::call_service(&app, test::TestRequest::get().uri("/fibo/36").to_request());
    let check = async {
        wait_for_pool(&state, 1, 0).await;
        let shed = async {
            let started = Instant::now();
            let response = test::call_service(
                &app,
                test::TestRequest::get()
                    .uri("/fibo/20")
                    .insert_header((header::ACCEPT, "application/json"))
                    .to_request(),
            )
            .await;
            (started.elapsed(), response)
        };
        let health = async {
            let started = Instant::now();
            let body: Value =
                test::call_and_read_body_json(&app, test::TestRequest::get().uri("/health").to_request()).await;
            (started.elapsed(), body)
        };
        let ((shed_in, response), (health_in, body)) = tokio::join!(shed, health);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(shed_in >= Duration::from_millis(300), "answered after {shed_in:?}");
        assert!(health_in < Duration::from_millis(300), "/health waited {health_in:?}");
        assert_eq!(body["compute"]["budget_ms"], 0.0);
        assert_eq!(body["shed_delay_ms"], 300.0);
        assert!(
            body["compute"]["expected_wait_ms"].as_f64().expect("wait") > 0.0,
            "{body}"
        );
        let error: Value = test::read_body_json(response).await;
        let message = error["error"].as_str().expect("error");
        assert!(message.contains("over the queueing budget 0.00s"), "{message}");
        let body: Value =
            test::call_and_read_body_json(&app, test::TestRequest::get().uri("/health").to_request()).await;
        assert_eq!(body["compute"]["shed_over_budget"], 1);
        assert_eq!(body["compute"]["shed_queue_full"], 0);
    };
    let (first, ()) = tokio::join!(first, check);
    assert_eq!(first.status(), StatusCode::OK);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status() {
    let state = state(&[]);
    let app = app!(state);
    for uri in ["/fibo/10", "/fibo/10", "/fibo/x", "/", "/missing"] {
        test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
    }
    let response = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .expect("content type")
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let text = body_text(response).await;
    for expected in [
        r#"workload_http_requests_total{route="/fibo/{n}",method="GET",status="200"} 2"#,
        r#"workload_http_requests_total{route="/fibo/{n}",method="GET",status="400"} 1"#,
        r#"workload_http_requests_total{route="/",method="GET",status="200"} 1"#,
        r#"workload_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"workload_http_request_duration_seconds_count{route="/fibo/{n}"} 3"#,
        "workload_http_requests_in_flight 1",
        "workload_compute_completed_total 2",
        r#"workload_compute_shed_total{reason="over_budget"} 0"#,
        r#"workload_compute_shed_total{reason="queue_full"} 0"#,
        "workload_compute_queue_budget_seconds 2.0",
        "workload_compute_expected_wait_seconds 0.0",
        "# TYPE workload_cpu_seconds counter",
        "workload_cpu_utilization_percent ",
        "workload_cpu_capacity_cores ",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
}
