//! What a support desk does with a lost `user_id` (issue 11.8): find the account by its
//! email, in any spelling, or walk its company's accounts a page at a time; then act on it.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::*;

/// Every page of `path` (a list whose items are under `field`), `limit` at a time.
async fn all_pages(system: &TestSystem, path: &str, field: &str, limit: u32) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}&limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = system.intake_get(&url, Some(ADMIN_KEY)).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages.push(body[field].as_array().unwrap().clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["next_cursor"].is_null(), "{body}");
                return pages;
            }
        }
        assert!(pages.len() < 100, "the pages never end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_desk_finds_accounts_by_email_and_pages_through_a_company() {
    let system = spawn_system().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let company = format!("desk-{}", &tag[..8]);

    // Found under any spelling that canonicalises to the stored one.
    let jurgen = system
        .create_user(
            &format!("j\u{00fc}rgen{tag}@b\u{00fc}cher.de"),
            Some(PASSWORD),
            &company,
            false,
        )
        .await;
    for spelling in [
        format!("J\u{00dc}RGEN{tag}@B\u{00dc}CHER.DE"),
        format!("ju\u{0308}rgen{tag}@xn--bcher-kva.de"),
        format!("  j\u{00fc}rgen{tag}@XN--BCHER-KVA.de "),
    ] {
        let query = url_escape(&spelling);
        let (status, user) = system
            .intake_get(
                &format!("/v1/admin/users/by-email?email={query}"),
                Some(ADMIN_KEY),
            )
            .await;
        assert_eq!(status, 200, "{spelling}: {user}");
        assert_eq!(user["user_id"], jurgen.as_str(), "{spelling}");
        assert_eq!(
            user["email"],
            format!("j\u{00fc}rgen{tag}@xn--bcher-kva.de")
        );
        assert_eq!(user["company_id"], company.as_str());
        assert_eq!(user["has_password"], true);
        assert!(user["disabled_at"].is_null(), "{user}");
        assert!(!user.to_string().contains("argon2"), "no hash: {user}");
    }
    let (status, missing) = system
        .intake_get(
            &format!("/v1/admin/users/by-email?email=nobody{tag}@example.com"),
            Some(ADMIN_KEY),
        )
        .await;
    assert_eq!(
        (status, &missing["error"]),
        (404, &Value::from("unknown_user"))
    );

    // The found id is the one to act on, and the account says what was done.
    let disabled = system
        .http
        .post(format!(
            "{}/v1/admin/users/{jurgen}/disable",
            system.intake_url
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status().as_u16(), 204);
    let (status, user) = system
        .intake_get(&format!("/v1/admin/users/{jurgen}"), Some(ADMIN_KEY))
        .await;
    assert_eq!(status, 200, "{user}");
    assert!(user["disabled_at"].is_string(), "{user}");

    // A company's accounts, a page at a time: each once, in one order, whatever the page size.
    let mut created = vec![jurgen];
    for n in 0..6 {
        let password = (n % 2 == 0).then_some(PASSWORD);
        created.push(
            system
                .create_user(
                    &unique_email(&format!("desk{n}")),
                    password,
                    &company,
                    false,
                )
                .await,
        );
    }
    system
        .create_user(&unique_email("elsewhere"), Some(PASSWORD), "acme", false)
        .await;
    let mut expected = created.clone();
    expected.sort();
    for limit in [1, 3, 7, 200] {
        let pages = all_pages(
            &system,
            &format!("/v1/admin/users?company_id={company}"),
            "users",
            limit,
        )
        .await;
        let expected_pages = expected.len().div_ceil(limit as usize);
        assert_eq!(pages.len(), expected_pages, "limit {limit}");
        assert!(pages.iter().all(|page| page.len() <= limit as usize));
        let listed: Vec<String> = pages
            .iter()
            .flatten()
            .map(|user| user["user_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, expected, "limit {limit}: none twice, none left out");
        let listed_text = serde_json::to_string(&pages).unwrap();
        assert!(!listed_text.contains("argon2"), "no hash in a listing");
    }
    // Every company's: ours and acme's.
    let everyone: HashSet<String> = all_pages(&system, "/v1/admin/users?", "users", 50)
        .await
        .into_iter()
        .flatten()
        .map(|user| user["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(everyone.len(), created.len() + 1);

    // API keys page the same way; never their raw values.
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(system.create_api_key(&company, None).await);
    }
    let pages = all_pages(
        &system,
        &format!("/v1/admin/api-keys?company_id={company}"),
        "api_keys",
        2,
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let listed: Vec<&Value> = pages.iter().flatten().collect();
    let ids: HashSet<&str> = listed
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let text = serde_json::to_string(&listed).unwrap();
    assert!(
        keys.iter().all(|key| !text.contains(key.as_str())),
        "{text}"
    );

    // A cursor is only good for the list that handed it out.
    let (_, first) = system
        .intake_get(
            &format!("/v1/admin/api-keys?company_id={company}&limit=1"),
            Some(ADMIN_KEY),
        )
        .await;
    let key_cursor = first["next_cursor"].as_str().unwrap().to_owned();
    for (path, status, code) in [
        (
            format!("/v1/admin/users?cursor={key_cursor}"),
            400,
            "invalid_cursor",
        ),
        (
            "/v1/admin/users?cursor=not-a-cursor".to_owned(),
            400,
            "invalid_cursor",
        ),
        (
            "/v1/admin/api-keys?cursor=0101".to_owned(),
            400,
            "invalid_cursor",
        ),
        ("/v1/admin/users?limit=0".to_owned(), 422, "invalid_request"),
        (
            "/v1/admin/users?limit=201".to_owned(),
            422,
            "invalid_request",
        ),
        (
            "/v1/admin/users?limit=many".to_owned(),
            400,
            "invalid_request",
        ),
        (
            "/v1/admin/users?company_id=Not%20A%20Slug".to_owned(),
            422,
            "invalid_request",
        ),
        (
            "/v1/admin/users/by-email?email=alice".to_owned(),
            422,
            "invalid_request",
        ),
    ] {
        let (answered, body) = system.intake_get(&path, Some(ADMIN_KEY)).await;
        assert_eq!(
            (answered, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }

    // Only the admin key opens them: no key, and a client key, are refused alike.
    for path in [
        format!("/v1/admin/users?company_id={company}"),
        format!("/v1/admin/users/by-email?email=nobody{tag}@example.com"),
        format!("/v1/admin/users/{}", created[1]),
        "/v1/admin/api-keys".to_owned(),
    ] {
        let (status, body) = system.intake_get(&path, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("missing_api_key")),
            "{path}"
        );
        let (status, body) = system.intake_get(&path, Some(&system.api_key)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_api_key")),
            "{path}"
        );
    }
}

/// `raw` as a query-string value (UTF-8, percent-encoded).
fn url_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
