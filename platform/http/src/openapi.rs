//! What the services' OpenAPI documents share, so that each states what its server does:
//!
//! - the schemas of the domain fields, built from the parsers' own limits (`Email::MAX_LEN`,
//!   `CompanyId::PATTERN`...), so a document cannot promise what the parser refuses;
//! - [`ErrorResponses`]: the answers every route of a kind can give whatever its handler
//!   does (a body that is not JSON, a missing key, a dependency that hangs...), added to
//!   each operation from what the operation declares (a body, parameters, security);
//! - [`Health`]: `/healthz` and `/readyz`.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{Content, HeaderBuilder, RefOr, Response, ResponseBuilder, Schema};

use shared::domain::{CompanyId, DeviceId, Email, OtpCode, UserAgent};

use crate::page::{DEFAULT_LIMIT, MAX_LIMIT};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An email address: any spelling, matched and stored in its canonical form.
pub fn email() -> ObjectBuilder {
    string()
        // Not `email`: internationalised addresses (`jürgen@bücher.de`) are welcome.
        .format(Some(SchemaFormat::Custom("idn-email".into())))
        .min_length(Some(3))
        .max_length(Some(Email::MAX_LEN))
        .description(Some(format!(
            "At most {} bytes in its canonical form (NFC, lower case, the domain in IDNA \
             ASCII); a local part mixing scripts is `email_mixed_script`, a domain made to \
             look like another `email_confusable_domain`.",
            Email::MAX_LEN
        )))
        .examples(["alice@example.com"])
}

pub fn company_id() -> ObjectBuilder {
    string()
        .pattern(Some(CompanyId::PATTERN))
        .max_length(Some(CompanyId::MAX_LEN))
        .examples(["acme"])
}

/// The opaque per-install id a client keeps.
pub fn device_id() -> ObjectBuilder {
    string()
        .pattern(Some(DeviceId::PATTERN))
        .min_length(Some(1))
        .max_length(Some(DeviceId::MAX_LEN))
}

/// Control characters (`char::is_control`, Unicode's `Cc`), spelled out: `\p{Cc}` is not
/// in every regex dialect a document's reader may use.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// Text of 1 to `max_bytes` bytes once trimmed, without control characters: what
/// `UserAgent::parse` and the API key name take.
pub fn printable_text(max_bytes: usize) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(max_bytes))
        // Something besides spaces, and no control character anywhere.
        .pattern(Some(format!(r"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$")))
        .description(Some(format!(
            "At most {max_bytes} bytes of UTF-8 once trimmed; no control characters."
        )))
}

pub fn user_agent() -> ObjectBuilder {
    printable_text(UserAgent::MAX_LEN)
        .examples(["Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"])
}

/// The emailed code.
pub fn otp_code() -> ObjectBuilder {
    string()
        .pattern(Some(format!("^[0-9]{{{}}}$", OtpCode::LENGTH)))
        .examples(["042137"])
}

/// What [`crate::idempotency::idempotent`] takes as a key.
fn idempotency_key() -> Schema {
    string()
        .min_length(Some(1))
        .max_length(Some(crate::idempotency::MAX_KEY_LEN))
        .pattern(Some("^[!-~]+$"))
        .into()
}

/// The end user's address, IPv4 or IPv6.
pub fn ip_address() -> Schema {
    OneOfBuilder::new()
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4))))
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6))))
        .examples(["203.0.113.7"])
        .into()
}

/// A password of `min` to `max` bytes.
///
/// `maxLength` counts characters, the server bytes: the description says which.
pub fn password(min: usize, max: usize) -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(format!("{min} to {max} bytes of UTF-8.")))
}

/// `schema`, or `null` (an optional field that may also be sent as `null`).
pub fn or_null(schema: ObjectBuilder) -> ObjectBuilder {
    use utoipa::openapi::schema::SchemaType;
    schema.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

pub fn page_limit() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
}

pub fn page_cursor() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .pattern(Some("^[0-9A-Fa-f]+$"))
        .description(Some(
            "Opaque: a `next_cursor` as the list handed it out; another value is \
             `400 invalid_cursor`.",
        ))
}

/// Adds to every operation the answers that come from outside its handler (each named by its
/// code in the answer's description, unless the operation already names it):
///
/// - with a JSON body: `400 malformed_json`, `413 payload_too_large`, `415
///   unsupported_media_type`, `422 invalid_request` (the [`crate::JsonBody`] extractor);
/// - with path or query parameters: `400 invalid_request` (a path or query string that does
///   not parse);
/// - with a key to present (security): `401 missing_api_key` / `invalid_api_key`, and `503`
///   (the key lookup's database, or the dependency deadline);
/// - with an `Idempotency-Key` header: `409 request_in_progress`, `422
///   idempotency_key_reused` / `invalid_idempotency_key`.
pub struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_error_responses(operation);
            }
        }
    }
}

fn add_error_responses(operation: &mut Operation) {
    let mut idempotent = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter
            .name
            .eq_ignore_ascii_case(crate::idempotency::HEADER)
        {
            // The middleware's rules, stated once, whatever the route wrote.
            parameter.schema = Some(idempotency_key().into());
            idempotent = true;
        }
    }
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_path_or_query = parameters
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query));
    let has_body = operation.request_body.is_some();
    let secured = operation.security.is_some();
    // (status, code, why): each added to the operation's answer of that status, unless its
    // description already names the code.
    let answers = [
        (
            has_body,
            "400",
            "malformed_json",
            "the body is not one JSON document".to_owned(),
        ),
        (
            has_path_or_query,
            "400",
            "invalid_request",
            "the path or the query string does not parse".to_owned(),
        ),
        (
            secured,
            "401",
            "missing_api_key",
            "no `Authorization: Bearer` key".to_owned(),
        ),
        (
            secured,
            "401",
            "invalid_api_key",
            "the key is not valid (unknown, revoked, or not this API's)".to_owned(),
        ),
        (
            idempotent,
            "409",
            "request_in_progress",
            "a request with this Idempotency-Key is still being handled; retry shortly".to_owned(),
        ),
        (
            has_body,
            "413",
            "payload_too_large",
            format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
        ),
        (
            has_body,
            "415",
            "unsupported_media_type",
            "the body is not sent as `Content-Type: application/json`".to_owned(),
        ),
        (
            has_body,
            "422",
            "invalid_request",
            "JSON, but not this request: a missing, unknown or invalid field (the message \
             names it)"
                .to_owned(),
        ),
        (
            idempotent,
            "422",
            "idempotency_key_reused",
            "this Idempotency-Key came with another body".to_owned(),
        ),
        (
            idempotent,
            "422",
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key is not 1 to {} printable ASCII characters",
                crate::idempotency::MAX_KEY_LEN
            ),
        ),
        (
            secured,
            "503",
            "service_unavailable",
            "the database or the broker failed; nothing was done, retry later".to_owned(),
        ),
        (
            secured,
            "503",
            "dependency_timeout",
            "the database or the broker did not answer in time; nothing was done, retry later"
                .to_owned(),
        ),
    ];
    let responses = &mut operation.responses.responses;
    for (applies, status, code, why) in answers {
        if !applies {
            continue;
        }
        let line = format!("`{code}`: {why}");
        match responses.get_mut(status) {
            Some(RefOr::T(response)) => {
                if !response.description.contains(&format!("`{code}`")) {
                    response.description = if response.description.is_empty() {
                        line
                    } else {
                        format!("{}; {line}", response.description)
                    };
                }
            }
            // A shared response a document refers to: its own description holds.
            Some(RefOr::Ref(_)) => {}
            None => {
                responses.insert(status.to_owned(), error_response(line).into());
            }
        }
    }
}

/// An answer with the `{error, message}` body.
pub fn error_response(description: impl Into<String>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorBody",
            )))),
        )
        .build()
}

/// An error answer that says when to retry (`Retry-After`, in seconds).
pub fn error_response_with_retry_after(description: impl Into<String>) -> Response {
    let mut response = error_response(description);
    response.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("Seconds to wait before retrying."))
            .build(),
    );
    response
}

/// The body of `/healthz` and `/readyz`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    pub status: String,
}

/// `/healthz` and `/readyz` (routes of [`crate::health`]), and the `ErrorBody` schema that
/// every document's errors refer to.
pub struct Health;

impl utoipa::Modify for Health {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
        use utoipa::{PartialSchema, ToSchema};
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert(crate::ErrorBody::name().into(), crate::ErrorBody::schema());
        components
            .schemas
            .insert(HealthBody::name().into(), HealthBody::schema());
        let ok = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        HealthBody::name(),
                    )))),
                )
                .build()
        };
        let healthz = OperationBuilder::new()
            .summary(Some("The process is alive."))
            .operation_id(Some("healthz"))
            .tag("health")
            .response("200", ok("Alive: `{\"status\": \"ok\"}`"))
            .build();
        let readyz = OperationBuilder::new()
            .summary(Some("The process's database and broker answer."))
            .operation_id(Some("readyz"))
            .tag("health")
            .response("200", ok("Ready: `{\"status\": \"ready\"}`"))
            .response(
                "503",
                error_response("`not_ready`: the database or the Kafka broker does not answer"),
            )
            .build();
        openapi
            .paths
            .paths
            .insert("/healthz".into(), PathItem::new(HttpMethod::Get, healthz));
        openapi
            .paths
            .paths
            .insert("/readyz".into(), PathItem::new(HttpMethod::Get, readyz));
    }
}
