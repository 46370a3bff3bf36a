//! Errors: one enum for the crate, one HTTP status per request error.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::pool::PoolError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the instance identity from IMDS failed.
    #[error("could not read the instance identity")]
    ResolveIdentity(#[source] crate::identity::ImdsError),
    /// The compute threads could not be started.
    #[error("could not start the compute pool")]
    StartPool(#[source] std::io::Error),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// How a client asked to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// JSON when the `Accept` header names `application/json`, else text.
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        let wants_json = req
            .headers()
            .get_all(header::ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("application/json"));
        if wants_json { Self::Json } else { Self::Text }
    }
}

/// A request that cannot be answered with a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// `n` is not an integer in the allowed range.
    #[error("invalid n {value:?}: n must be an integer in 0..={max_n}")]
    InvalidN { value: String, max_n: u32 },
    /// `/fibo` or `/fibo/` without `n`.
    #[error("missing n: use /fibo/{{n}} with n an integer in 0..={max_n}")]
    MissingN { max_n: u32 },
    /// The compute pool is full or stopped.
    #[error(transparent)]
    Compute(#[from] PoolError),
    /// No such route.
    #[error("no route for {method} {path}; routes: GET /, GET /health, GET /metrics, GET /fibo/{{n}}")]
    NotFound { method: String, path: String },
}

impl ApiError {
    /// The answer in the client's format, with `Retry-After` when shedding.
    pub fn respond(&self, format: Format) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Compute(PoolError::Overloaded { retry_after_s, .. }) = self {
            response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
        }
        if let Self::Compute(PoolError::Stopped) = self {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        match format {
            Format::Text => response
                .content_type(ContentType::plaintext())
                .body(format!("{self}\n")),
            Format::Json => {
                let mut body = json!({ "error": self.to_string() });
                if let Self::InvalidN { max_n, .. } | Self::MissingN { max_n } = self {
                    body["field"] = json!("n");
                    body["allowed"] = json!(format!("0..={max_n}"));
                }
                response.json(body)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidN { .. } | Self::MissingN { .. } => StatusCode::BAD_REQUEST,
            Self::Compute(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.respond(Format::Text)
    }
}
