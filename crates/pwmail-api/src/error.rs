//! The one error type of the API, in the upstream gRPC-status shape.
//!
//! Every failure, including dropshot's own extractor failures (bad JSON, wrong
//! content type, body too large), becomes an `ApiError`, so callers always get
//! `{"code", "message", "details"}`. HTTP status and gRPC code are mapped here
//! and nowhere else.

use dropshot::{
    ApiEndpointResponse, ErrorStatusCode, HttpError, HttpResponse, HttpResponseError as _,
};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use pwmail_types::ErrorResponse;

/// RFC 9745 `Deprecation` value of SendPasswordEmail: deprecated 2022-01-14.
pub const DEPRECATION: &str = "@1642118400";
/// RFC 8288 `Link` to SendPasswordEmail's successor.
pub const SUCCESSOR_LINK: &str =
    "</api/web/custom/password/admin_reset>; rel=\"successor-version\"";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state, e.g. a disabled user.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent call got there first (an Idempotency-Key in use): retry.
    #[error("{0}")]
    Aborted(String),
    /// Well-formed but unusable together with earlier calls (an
    /// Idempotency-Key reused for another request).
    #[error("{0}")]
    Unprocessable(String),
    /// The path exists but does not take this HTTP method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A rate limit refused the call; `message` names the limit.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The request itself did not arrive in time (the client timeout):
    /// 408, where `DeadlineExceeded` is the server not finishing (504).
    #[error("{0}")]
    RequestTimeout(String),
    /// `detail` goes to the server log (dropshot logs `Display` with the
    /// request id); the caller only sees a generic message.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl ApiError {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal {
            detail: detail.to_string(),
        }
    }

    /// gRPC status code, as upstream returns it in `code`.
    pub fn grpc_code(&self) -> i32 {
        match self {
            ApiError::InvalidArgument(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::Unprocessable(_) => 3,
            ApiError::DeadlineExceeded(_) | ApiError::RequestTimeout(_) => 4,
            ApiError::NotFound(_) => 5,
            ApiError::PermissionDenied(_) => 7,
            ApiError::ResourceExhausted { .. } => 8,
            ApiError::FailedPrecondition(_) => 9,
            ApiError::Aborted(_) => 10,
            ApiError::MethodNotAllowed(_) => 12,
            ApiError::Internal { .. } => 13,
            ApiError::Unavailable { .. } => 14,
            ApiError::Unauthenticated(_) => 16,
        }
    }

    /// What the caller reads in `message`.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal { .. } => "internal error; the server log has the details under \
                                          this response's x-request-id"
                .to_string(),
            other => other.to_string(),
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::ResourceExhausted {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            code: self.grpc_code(),
            message: self.public_message(),
            details: Vec::new(),
        }
    }
}

impl From<HttpError> for ApiError {
    /// dropshot's extractor and serialization failures.
    fn from(e: HttpError) -> Self {
        let message = e.external_message;
        match e.status_code.as_u16() {
            // dropshot reports an oversized body as a plain 400.
            400 if message.contains("request body exceeded maximum size") => {
                ApiError::PayloadTooLarge(message)
            }
            413 => ApiError::PayloadTooLarge(message),
            401 => ApiError::Unauthenticated(message),
            403 => ApiError::PermissionDenied(message),
            404 => ApiError::NotFound(message),
            405 => ApiError::MethodNotAllowed(message),
            408 => ApiError::RequestTimeout(message),
            504 => ApiError::DeadlineExceeded(message),
            409 => ApiError::FailedPrecondition(message),
            429 => ApiError::ResourceExhausted {
                message,
                retry_after_secs: 1,
            },
            503 => ApiError::Unavailable {
                message,
                retry_after_secs: 1,
            },
            400..=499 => ApiError::InvalidArgument(message),
            _ => ApiError::Internal {
                detail: e.internal_message,
            },
        }
    }
}

impl dropshot::HttpResponseError for ApiError {
    fn status_code(&self) -> ErrorStatusCode {
        match self {
            ApiError::InvalidArgument(_) => ErrorStatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => ErrorStatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => ErrorStatusCode::UNAUTHORIZED,
            ApiError::PermissionDenied(_) => ErrorStatusCode::FORBIDDEN,
            ApiError::NotFound(_) => ErrorStatusCode::NOT_FOUND,
            ApiError::FailedPrecondition(_) | ApiError::Aborted(_) => ErrorStatusCode::CONFLICT,
            ApiError::Unprocessable(_) => ErrorStatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed(_) => ErrorStatusCode::METHOD_NOT_ALLOWED,
            ApiError::ResourceExhausted { .. } => ErrorStatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal { .. } => ErrorStatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable { .. } => ErrorStatusCode::SERVICE_UNAVAILABLE,
            ApiError::DeadlineExceeded(_) => ErrorStatusCode::GATEWAY_TIMEOUT,
            ApiError::RequestTimeout(_) => ErrorStatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// The body is the document's `ErrorResponse`; this is what dropshot uses for
/// its own extractor failures, which never need extra headers.
impl serde::Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

impl schemars::JsonSchema for ApiError {
    fn schema_name() -> String {
        <ErrorResponse as schemars::JsonSchema>::schema_name()
    }
    fn is_referenceable() -> bool {
        false
    }
    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        generator.subschema_for::<ErrorResponse>()
    }
}

/// What a handler returns: its typed success, or an `ApiError` rendered with
/// the headers it needs (`Retry-After`). dropshot 0.18 lets a handler's error
/// type choose only status and body, so errors that carry headers travel on
/// the success path; the documented success schema is `R`'s.
pub struct Reply<R> {
    result: Result<R, ApiError>,
    /// Extra headers of an error response (a success carries typed headers).
    error_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl<R> From<Result<R, ApiError>> for Reply<R> {
    fn from(result: Result<R, ApiError>) -> Self {
        Reply {
            result,
            error_headers: Vec::new(),
        }
    }
}

impl<R> Reply<R> {
    /// Marks error responses of a deprecated operation (RFC 9745, RFC 8288).
    pub fn with_deprecation(mut self) -> Self {
        self.error_headers.push((
            http::HeaderName::from_static("deprecation"),
            http::HeaderValue::from_static(DEPRECATION),
        ));
        self.error_headers.push((
            http::header::LINK,
            http::HeaderValue::from_static(SUCCESSOR_LINK),
        ));
        self
    }
}

impl<R: HttpResponse> HttpResponse for Reply<R> {
    fn to_result(self) -> Result<http::Response<dropshot::Body>, HttpError> {
        match self.result {
            Ok(success) => success.to_result(),
            Err(error) => {
                let body = serde_json::to_string(&error.body())
                    .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
                let mut builder = http::Response::builder()
                    .status(error.status_code().as_status())
                    .header(CONTENT_TYPE, "application/json");
                if let Some(secs) = error.retry_after_secs() {
                    builder = builder.header(RETRY_AFTER, secs.to_string());
                }
                for (name, value) in self.error_headers {
                    builder = builder.header(name, value);
                }
                Ok(builder.body(body.into())?)
            }
        }
    }

    fn response_metadata() -> ApiEndpointResponse {
        R::response_metadata()
    }

    fn status_code(&self) -> http::StatusCode {
        match &self.result {
            Ok(success) => success.status_code(),
            Err(error) => error.status_code().as_status(),
        }
    }
}
