//! Refuses a body whose declared length is over the limit before any of it
//! is read.
//!
//! dropshot 0.18 enforces `request_body_max_bytes` while reading, and on
//! overflow reads the rest of the body and throws it away before answering;
//! a 10 MB upload is then received in full. Extractors run in argument order
//! and the body extractor runs last, so this one, placed before it by the
//! generated trait, answers 413 while the body is still on the wire (hyper
//! then closes the connection instead of reading on). Chunked bodies carry
//! no length and are still cut off by dropshot's own limit.

use dropshot::{
    ApiEndpointBodyContentType, ExtensionMode, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, SharedExtractor,
};

/// Proof that the request's `Content-Length`, if any, is within the limit.
#[derive(Debug)]
pub struct DeclaredBodyLimit;

#[async_trait::async_trait]
impl SharedExtractor for DeclaredBodyLimit {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let limit = rqctx.request_body_max_bytes();
        let declared = rqctx
            .request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > limit as u64 => Err(HttpError::for_client_error(
                None,
                dropshot::ClientErrorStatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body exceeded maximum size of {limit} bytes \
                     (Content-Length is {length})"
                ),
            )),
            _ => Ok(DeclaredBodyLimit),
        }
    }

    fn metadata(_: ApiEndpointBodyContentType) -> ExtractorMetadata {
        // Nothing to document: the limit is the 413 response already declared.
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters: Vec::new(),
        }
    }
}
