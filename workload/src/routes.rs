//! HTTP routes, shared by `main` and the tests through [`configure`].

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::ContentType;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, Format};
use crate::pool::PoolError;

/// Registers every route (and the metrics middleware) with `state`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state).service(
            web::scope("")
                .wrap(from_fn(track))
                .service(web::resource("/").get(index))
                .service(web::resource("/health").get(health))
                .service(web::resource("/metrics").get(metrics))
                .service(web::resource(["/fibo", "/fibo/"]).get(fibo_missing))
                .service(web::resource("/fibo/{n}").get(fibo))
                .default_service(web::to(not_found)),
        );
    }
}

/// Counts every request by route and status, and its latency.
async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let started = Instant::now();
    let method = req.method().clone();
    let _in_flight = state.as_ref().map(|s| InFlight::enter(s));
    let response = next.call(req).await?;
    if let Some(state) = &state {
        // The pattern, never the raw path: label values stay few.
        let route = response.request().match_pattern().filter(|p| !p.is_empty());
        let route = route.as_deref().unwrap_or("unmatched");
        state
            .metrics
            .observe(route, method.as_str(), response.status().as_u16(), started.elapsed());
    }
    Ok(response)
}

/// Keeps the in-flight gauge right even when a request is cancelled.
struct InFlight<'a>(&'a AppState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a AppState) -> Self {
        state.metrics.in_flight().inc();
        Self(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight().dec();
    }
}

/// `GET /`: the reference service's liveness answer.
async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("I am healthy")
}

/// `GET /health`: identity, uptime, load and CPU, as JSON.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let identity = &state.identity;
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "instance_id": identity.instance_id,
        "host": identity.host,
        "private_ip": identity.private_ip,
        "availability_zone": identity.availability_zone,
        "uptime_s": state.cpu.uptime().as_secs_f64(),
        "in_flight": state.metrics.in_flight().get(),
        "cpu_utilization_percent": state.cpu.utilization_percent(),
        "cpu_window_s": state.cpu.window().as_secs_f64(),
        "cpu_capacity_cores": state.cpu.capacity_cores(),
        "cpu_limit_cores": state.pool.cpu_limit(),
        "compute": state.pool.snapshot(),
        "shed_delay_ms": state.shed.delay().as_secs_f64() * 1e3,
        "max_n": state.max_n,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().body("could not encode metrics\n"),
    }
}

/// `GET /fibo` and `GET /fibo/`: n is missing.
async fn fibo_missing(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    ApiError::MissingN { max_n: state.max_n }.respond(Format::of(&req))
}

/// `GET /fibo/{n}`: the deliberately recursive Fibonacci, on the compute pool.
async fn fibo(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let format = Format::of(&req);
    let n = match parse_n(req.match_info().query("n"), state.max_n) {
        Ok(n) => n,
        Err(error) => return error.respond(format),
    };
    let computed = match state.pool.fibo(n).await {
        Ok(computed) => computed,
        Err(error) => {
            tracing::debug!(%error, n, "shed");
            // A refusal is answered in its slot (see `shed`): a client that
            // sends again at once cannot make refusals take the CPU. One that
            // goes away meanwhile drops this future and costs nothing more.
            if matches!(error, PoolError::Overloaded { .. }) {
                actix_web::rt::time::sleep_until(state.shed.answer_at(Instant::now()).into()).await;
            }
            return ApiError::from(error).respond(format);
        }
    };
    let identity = &state.identity;
    match format {
        Format::Text => HttpResponse::Ok().content_type(ContentType::plaintext()).body(format!(
            "Fibo({n}) = {} \nComputed by {} with private ip {} \n",
            computed.value, identity.host, identity.private_ip
        )),
        Format::Json => HttpResponse::Ok().json(json!({
            "n": n,
            "fibo": computed.value,
            "host": identity.host,
            "private_ip": identity.private_ip,
            "instance_id": identity.instance_id,
            "queue_ms": computed.queued.as_secs_f64() * 1e3,
            "compute_ms": computed.compute.as_secs_f64() * 1e3,
            "cpu_ms": computed.cpu.as_secs_f64() * 1e3,
        })),
    }
}

/// Anything else: 404 naming the routes that exist.
async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound {
        method: req.method().to_string(),
        path: truncate(req.path()),
    }
    .respond(Format::of(&req))
}

/// `n` as the path gave it: ASCII digits only (no sign, exponent, space or
/// fraction), at most `max_n`.
pub fn parse_n(raw: &str, max_n: u32) -> Result<u32, ApiError> {
    let invalid = || ApiError::InvalidN {
        value: truncate(raw),
        max_n,
    };
    if raw.is_empty() {
        return Err(ApiError::MissingN { max_n });
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match raw.parse::<u32>() {
        Ok(n) if n <= max_n => Ok(n),
        _ => Err(invalid()),
    }
}

/// Echoes of client input stay short.
fn truncate(raw: &str) -> String {
    const MAX_CHARS: usize = 40;
    if raw.chars().count() <= MAX_CHARS {
        raw.to_string()
    } else {
        let mut short: String = raw.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_n_accepts_integers_in_range() {
        assert_eq!(parse_n("0", 38), Ok(0));
        assert_eq!(parse_n("38", 38), Ok(38));
        assert_eq!(parse_n("007", 38), Ok(7));
    }

    #[test]
    fn parse_n_refuses_everything_else_naming_the_range() {
        let cases = [
            ("word", "abc"),
            ("negative", "-1"),
            ("plus sign", "+1"),
            ("exponent", "1e9"),
            ("fraction", "3.5"),
            ("above max", "39"),
            ("overflows u32", "4294967296"),
            ("overflows u64", "99999999999999999999"),
            ("space", " 3"),
            ("unicode digits", "٣"),
            ("cjk", "三十"),
            ("emoji", "🔥"),
        ];
        for (name, raw) in cases {
            let error = parse_n(raw, 38).expect_err(name);
            assert!(matches!(error, ApiError::InvalidN { .. }), "{name}: {error:?}");
            assert!(error.to_string().contains("0..=38"), "{name}: {error}");
        }
        assert_eq!(parse_n("", 38), Err(ApiError::MissingN { max_n: 38 }));
    }

    #[test]
    fn long_input_is_not_echoed_whole() {
        let raw = "9".repeat(10_000);
        let message = parse_n(&raw, 38).expect_err("too long").to_string();
        assert!(message.len() < 200, "{message}");
    }
}
