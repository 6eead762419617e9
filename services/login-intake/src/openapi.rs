use mfa_http::openapi::{device_id, or_null, password, ErrorResponses, Health};
use mfa_http::BearerApiKey;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "adaptive-mfa login-intake", description = "Decides logins: approved, mfa_required (a code is emailed) or rejected."),
    paths(
        crate::logins::create_login,
        crate::logins::get_login,
        crate::feedback::client_feedback,
        crate::feedback::admin_feedback,
        crate::admin::create_user,
        crate::admin::list_users,
        crate::admin::find_user_by_email,
        crate::admin::get_user,
        crate::user_logins::list_user_logins,
        crate::user_export::export,
        crate::admin::create_api_key,
        crate::admin::list_api_keys,
        crate::admin::revoke_api_key,
        crate::admin::disable_user,
        crate::admin::enable_user,
        crate::admin::change_password,
        crate::admin::reset_history,
        crate::admin::delete_user,
        crate::admin::set_user_first_factors,
        crate::admin::set_company,
        crate::admin::get_company,
        crate::risk_policy::set_risk_policy,
        crate::risk_policy::get_risk_policy
    ),
    components(schemas(mfa_http::ErrorBody)),
    modifiers(&BearerApiKey, &Health, &ErrorResponses)
)]
pub struct ApiDoc;

/// The password of a login: 1 to 1024 bytes (`LoginRequest::parse`; a test holds the two
/// together).
pub fn login_password() -> ObjectBuilder {
    or_null(password(1, 1024))
}

pub fn optional_device_id() -> ObjectBuilder {
    or_null(device_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logins::LoginRequest;

    fn document() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn every_route_documents_the_answers_its_layers_give() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                let has = |status: &str| responses.contains_key(status);
                if path.starts_with("/v1/") {
                    operations += 1;
                    assert!(has("401") && has("503"), "{method} {path}");
                    let unauthorized = responses["401"]["description"].as_str().unwrap();
                    assert!(
                        unauthorized.contains("`missing_api_key`"),
                        "{method} {path}"
                    );
                }
                if operation.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(has(status), "{method} {path} lacks {status}");
                    }
                    let bad = responses["400"]["description"].as_str().unwrap();
                    assert!(bad.contains("`malformed_json`"), "{method} {path}");
                }
            }
        }
        assert_eq!(operations, 23);
        for list in [
            "/v1/admin/users",
            "/v1/admin/api-keys",
            "/v1/admin/users/{user_id}/logins",
        ] {
            let bad = doc["paths"][list]["get"]["responses"]["400"]["description"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(bad.contains("`invalid_cursor`"), "{list}: {bad}");
        }
        let limited = &doc["paths"]["/v1/logins"]["post"]["responses"]["429"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
        assert!(doc["paths"]["/healthz"]["get"].is_object());
        assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    }

    #[test]
    fn the_password_change_switch_and_its_rejection_are_documented() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let switch = &schemas["RiskPolicyBody"]["properties"]["password_change_on_takeover_report"];
        assert!(switch.to_string().contains("boolean"), "{switch}");
        let said = switch["description"].as_str().unwrap();
        assert!(said.contains("password_change_required"), "{said}");
        let reason = schemas["LoginDecision"]["properties"]["reason"]["description"]
            .as_str()
            .unwrap();
        assert!(reason.contains("`password_change_required`"), "{reason}");
    }

    /// The login password's documented bounds are the ones `LoginRequest::parse` applies.
    #[test]
    fn the_login_password_is_documented_as_parsed() {
        let doc = document();
        let schema = &doc["components"]["schemas"]["LoginRequest"]["properties"]["password"];
        let (min, max) = (
            schema["minLength"].as_u64().unwrap() as usize,
            schema["maxLength"].as_u64().unwrap() as usize,
        );
        let login = |password: String| {
            let body = serde_json::json!({
                "email": "alice@example.com", "password": password, "platform": "ios",
                "context": { "ip": "203.0.113.7", "user_agent": "Firefox" },
            });
            LoginRequest::parse(body.to_string().as_bytes()).is_ok()
        };
        assert!(login("p".repeat(min)) && login("p".repeat(max)));
        assert!(!login("p".repeat(min - 1)) && !login("p".repeat(max + 1)));
    }
}
