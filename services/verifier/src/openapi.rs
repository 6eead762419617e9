use mfa_http::openapi::{ErrorResponses, Health};
use mfa_http::BearerApiKey;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "adaptive-mfa verifier", description = "Checks the emailed 6-digit code of an MFA challenge."),
    paths(crate::verify::verify, crate::feedback::show, crate::feedback::confirm),
    modifiers(&BearerApiKey, &Health, &ErrorResponses)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::VerifyRequest;

    fn document() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn verify_documents_every_answer_it_can_give() {
        let doc = document();
        let responses = &doc["paths"]["/v1/challenges/{challenge_id}/verify"]["post"]["responses"];
        let statuses: Vec<&str> = responses
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            statuses,
            ["200", "400", "401", "403", "404", "409", "410", "413", "415", "422", "503"]
        );
        let unauthorized = responses["401"]["description"].as_str().unwrap();
        for code in ["invalid_code", "missing_api_key", "invalid_api_key"] {
            assert!(unauthorized.contains(code), "{unauthorized}");
        }
        assert!(doc["paths"]["/healthz"]["get"].is_object());
        assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    }

    #[test]
    fn the_code_is_documented_as_the_parser_takes_it() {
        let pattern = document()["components"]["schemas"]["VerifyRequest"]["properties"]["code"]
            ["pattern"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(pattern, "^[0-9]{6}$");
        assert!(VerifyRequest::parse(br#"{"code":"012345"}"#).is_ok());
        for refused in ["01234", "0123456", "01234a"] {
            let body = format!(r#"{{"code":"{refused}"}}"#);
            assert!(VerifyRequest::parse(body.as_bytes()).is_err(), "{refused}");
        }
    }
}
