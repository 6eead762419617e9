use mfa_http::BearerApiKey;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "adaptive-mfa login-intake", description = "Decides logins: approved, mfa_required (a code is emailed) or rejected."),
    paths(
        crate::logins::create_login,
        crate::logins::get_login,
        crate::admin::create_user,
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
        crate::admin::get_company
    ),
    components(schemas(mfa_http::ErrorBody)),
    modifiers(&BearerApiKey)
)]
pub struct ApiDoc;
