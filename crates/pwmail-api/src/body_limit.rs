//! Request bodies read with a hard cap: over the limit, the answer is 413
//! at once and the rest of the body is never read.
//!
//! dropshot 0.18 enforces `request_body_max_bytes` while reading, but on
//! overflow it reads the rest of the body and throws it away before
//! answering: a 10 MB upload is received in full. [`LimitedBody`] reads the
//! body itself (refusing a too-large `Content-Length` before reading any of
//! it, and a chunked body as soon as it passes the limit), then hands the
//! bytes to dropshot's `TypedBody`, so parsing, error messages and the
//! OpenAPI description are dropshot's own. The rest of a refused body stays
//! unread; hyper closes the connection after the 413.
//!
//! It also refuses `null` for a property the document does not mark
//! `nullable`: serde reads `"namespace": null` as an absent optional field,
//! which would accept a body the document forbids.
//!
//! [`LimitedBytes`] is the same read for endpoints that parse the bytes
//! themselves (the reset page's form).
//!
//! The body must have arrived by the request's [`dropshot::RequestDeadline`]
//! (the server's client timeout after the request's first byte): a client
//! that sends headers and then trickles or stops gets 408, not a handler
//! waiting on it for as long as it likes.

use bytes::{Bytes, BytesMut};
use dropshot::{
    ApiEndpointBodyContentType, ClientErrorStatusCode, ExclusiveExtractor, ExtractorMetadata,
    HttpError, RequestContext, ServerContext, TypedBody, UntypedBody,
};
use http_body_util::BodyExt as _;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

fn too_large(limit: usize, detail: &str) -> HttpError {
    HttpError::for_client_error(
        None,
        ClientErrorStatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeded maximum size of {limit} bytes{detail}"),
    )
}

/// 413 when the request declares a body longer than the endpoint's limit.
fn check_declared_length<C: ServerContext>(
    rqctx: &RequestContext<C>,
    headers: &http::HeaderMap,
) -> Result<(), HttpError> {
    let limit = rqctx.request_body_max_bytes();
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            Err(too_large(limit, &format!(" (Content-Length is {length})")))
        }
        _ => Ok(()),
    }
}

/// Reads a body of at most `request_body_max_bytes`: a longer declared
/// `Content-Length` is refused before reading, a chunked body as soon as it
/// passes the limit; the rest of a refused body is never read (`body` is
/// dropped, and hyper closes the connection after the 413).
async fn read_capped<C: ServerContext>(
    rqctx: &RequestContext<C>,
    parts: &http::request::Parts,
    body: dropshot::Body,
) -> Result<Bytes, HttpError> {
    check_declared_length(rqctx, &parts.headers)?;
    let read = read_all(rqctx.request_body_max_bytes(), body);
    match parts.extensions.get::<dropshot::RequestDeadline>() {
        Some(deadline) => tokio::time::timeout_at(deadline.0, read)
            .await
            .unwrap_or_else(|_| {
                Err(HttpError::for_client_error(
                    None,
                    ClientErrorStatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive within the client timeout; send it again"
                        .to_string(),
                ))
            }),
        None => read.await,
    }
}

async fn read_all(limit: usize, mut body: dropshot::Body) -> Result<Bytes, HttpError> {
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            HttpError::for_bad_request(None, format!("error streaming request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > limit {
                return Err(too_large(limit, ""));
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(read.freeze())
}

/// A JSON body of type `T`, read with a hard cap (see the module docs).
#[derive(Debug)]
pub struct LimitedBody<T>(TypedBody<T>)
where
    T: JsonSchema + DeserializeOwned + Send + Sync;

impl<T> LimitedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync,
{
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[async_trait::async_trait]
impl<T> ExclusiveExtractor for LimitedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: http::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let (parts, body) = request.into_parts();
        check_json_content_type(&parts.headers)?;
        let read = read_capped(rqctx, &parts, body).await?;
        refuse_trailing_characters(&read)?;
        refuse_nulls::<T>(&read)?;
        let request = http::Request::from_parts(parts, dropshot::Body::with_content(read));
        let typed = <TypedBody<T> as ExclusiveExtractor>::from_request(rqctx, request).await?;
        Ok(LimitedBody(typed))
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(body_content_type)
    }
}

/// 400 unless the body is declared `application/json` (UTF-8, the only
/// charset JSON has): dropshot also takes `application/*+json` and any
/// `charset`, which the document does not offer. A missing type is left to
/// dropshot, which refuses it.
fn check_json_content_type(headers: &http::HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let mut parts = text.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let charset_ok = parts.all(|p| match p.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    if media.eq_ignore_ascii_case("application/json") && charset_ok {
        return Ok(());
    }
    Err(HttpError::for_bad_request(
        None,
        format!(
            "unsupported content-type {:?}: the body must be sent as application/json (UTF-8)",
            String::from_utf8_lossy(value.as_bytes())
        ),
    ))
}

/// 400 for a JSON value followed by more than whitespace (`{...}xyz`),
/// which dropshot's parser stops reading before.
fn refuse_trailing_characters(body: &[u8]) -> Result<(), HttpError> {
    use serde::Deserialize as _;
    let mut parser = serde_json::Deserializer::from_slice(body);
    if serde::de::IgnoredAny::deserialize(&mut parser).is_ok()
        && let Err(e) = parser.end()
    {
        return Err(HttpError::for_bad_request(
            None,
            format!("unable to parse JSON body: {e}"),
        ));
    }
    Ok(())
}

/// 400 when a top-level property that `T`'s schema declares is `null` in
/// the JSON object in `body` and the schema does not mark it `nullable`. Bodies that do not
/// parse are left to `TypedBody`, which says why.
fn refuse_nulls<T: JsonSchema>(body: &[u8]) -> Result<(), HttpError> {
    if !body.windows(4).any(|w| w == b"null") {
        return Ok(());
    }
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return Ok(());
    };
    let mut generator =
        schemars::r#gen::SchemaGenerator::new(schemars::r#gen::SchemaSettings::openapi3());
    let schema = T::json_schema(&mut generator).into_object();
    let properties = schema.object.map(|o| o.properties).unwrap_or_default();
    for (name, value) in &fields {
        if !value.is_null() {
            continue;
        }
        // Properties the schema does not declare may be anything.
        let Some(property) = properties.get(name) else {
            continue;
        };
        let nullable = matches!(property, schemars::schema::Schema::Object(o)
            if o.extensions.get("nullable") == Some(&serde_json::Value::Bool(true)));
        if !nullable {
            return Err(HttpError::for_bad_request(
                None,
                format!(
                    "unable to parse JSON body: {name}: null is not allowed; omit the field instead"
                ),
            ));
        }
    }
    Ok(())
}

/// The raw bytes of a body, read with the same hard cap; for endpoints that
/// parse their body themselves and answer its refusal themselves (the reset
/// page shows a 413 page with its own headers, not dropshot's JSON).
#[derive(Debug)]
pub struct LimitedBytes(Result<Bytes, HttpError>);

impl LimitedBytes {
    /// The body, or why it was refused (413 over the cap, 400 on a broken
    /// stream).
    pub fn bytes(&self) -> Result<&[u8], &HttpError> {
        self.0.as_deref()
    }
}

#[async_trait::async_trait]
impl ExclusiveExtractor for LimitedBytes {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: http::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let (parts, body) = request.into_parts();
        Ok(LimitedBytes(read_capped(rqctx, &parts, body).await))
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <UntypedBody as ExclusiveExtractor>::metadata(body_content_type)
    }
}
