//! The page behind the emailed link, over plain HTTP.

use std::sync::Arc;
use std::time::Duration;

use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use pwmail_server::clock::ManualClock;
use pwmail_server::secrets::password::Hasher;
use pwmail_store::LinkState;
use pwmail_tests::{DEADLINE, Options, TestServer, header, link_token, now};

const GOOD: &str = "plum trellis quasar lantern";

async fn send(server: &TestServer, email: &str) -> String {
    let body = SendPasswordEmailRequest::builder()
        .email(email)
        .namespace(Some("system".try_into().unwrap()));
    let before = server.wait_for_emails(0, Duration::ZERO).await.len();
    server
        .client()
        .send_password_email_system()
        .body(body.clone())
        .send()
        .await
        .expect("200");
    let emails = server.wait_for_emails(before + 1, DEADLINE).await;
    let newest = emails
        .iter()
        .filter_map(|e| link_token(e))
        .collect::<Vec<_>>();
    // The one link not seen before.
    newest.last().cloned().expect("a link").to_string()
}

async fn latest_link(server: &TestServer, count: usize) -> String {
    let emails = server.wait_for_emails(count, DEADLINE).await;
    assert!(emails.len() >= count);
    // Each email file holds one link; find the one whose link is open.
    for e in &emails {
        if let Some(t) = link_token(e) {
            let link = server
                .store()
                .find_link(&pwmail_server::secrets::hash(&t))
                .await
                .unwrap();
            if link.is_some_and(|l| l.state == LinkState::Open) {
                return t;
            }
        }
    }
    panic!("no open link among {} emails", emails.len());
}

fn url(server: &TestServer, token: &str) -> String {
    server.endpoint(&format!("/reset/{token}"))
}

async fn get(server: &TestServer, token: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::get(url(server, token)).await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

async fn post(
    server: &TestServer,
    token: &str,
    password: &str,
    confirm: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::Client::new()
        .post(url(server, token))
        .form(&[("password", password), ("password_confirm", confirm)])
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// A stylesheet the page links, checked to be served as CSS.
async fn stylesheet(server: &TestServer, path: &str) -> String {
    let r = reqwest::get(server.endpoint(path)).await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/css"), "{path}: {kind}");
    r.text().await.unwrap()
}

fn assert_page_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe-inline"),
        "no script: {csp}"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn verifies(server: &TestServer, email: &str, password: &str) -> bool {
    let user = server
        .store()
        .find_user_by_email(email)
        .await
        .unwrap()
        .unwrap();
    match server.store().password_hash(user.id).await.unwrap() {
        Some(phc) => Hasher::new(1, 0)
            .verify(password.into(), phc)
            .await
            .unwrap(),
        None => false,
    }
}

#[tokio::test]
async fn get_never_consumes_and_post_sets_the_password_once() {
    let server = TestServer::start().await;
    server.add_user("carol@example.com", false).await;
    let token = send(&server, "carol@example.com").await;

    for _ in 0..2 {
        let (status, headers, body) = get(&server, &token).await;
        assert_eq!(status, 200);
        assert_page_headers(&headers);
        assert!(body.contains("carol@example.com"));
        assert!(
            body.contains(r#"<label for="password">"#)
                && body.contains(r#"<label for="password_confirm">"#)
        );
        assert!(body.contains("At least 12 characters"));
        assert!(!body.contains("<script"), "works without JavaScript");
    }
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.state, LinkState::Open, "GET does not consume");

    let (status, headers, body) = post(&server, &token, GOOD, GOOD).await;
    assert_eq!(status, 200, "{body}");
    assert_page_headers(&headers);
    assert!(body.contains("Your password was changed"));
    assert!(verifies(&server, "carol@example.com", GOOD).await);

    // The notice arrives; the link is spent.
    let emails = server.wait_for_emails(2, DEADLINE).await;
    let notice = emails
        .iter()
        .find(|e| header(e, "Subject") == Some("Your pwmail password was changed"))
        .expect("password changed notice");
    assert!(link_token(notice).is_none(), "the notice carries no link");
    let (status, headers, body) = get(&server, &token).await;
    assert_eq!(status, 410);
    assert_page_headers(&headers);
    assert!(body.contains("This link was already used"), "{body}");
    let (status, _, body) = post(
        &server,
        &token,
        "another strong passphrase here",
        "another strong passphrase here",
    )
    .await;
    assert_eq!(status, 410, "a token works exactly once");
    assert!(body.contains("already used"));
    assert!(
        verifies(&server, "carol@example.com", GOOD).await,
        "unchanged"
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_expired_links_get_the_same_page() {
    let clock = Arc::new(ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    server.add_user("dave@example.com", false).await;
    let token = send(&server, "dave@example.com").await;
    let unknown = "A".repeat(43);
    let (s1, h1, b1) = get(&server, &unknown).await;
    clock.advance_ms(24 * 3600 * 1000 + 1);
    let (s2, h2, b2) = get(&server, &token).await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(b1, b2, "expired looks exactly like unknown");
    assert_page_headers(&h1);
    assert_page_headers(&h2);
    assert!(b1.contains("This link is not valid") && b1.contains("Ask your administrator"));
    let (status, _, _) = post(&server, &token, GOOD, GOOD).await;
    assert_eq!(status, 404, "an expired link cannot set a password");
    assert!(!verifies(&server, "dave@example.com", GOOD).await);
    server.stop().await;
}

#[tokio::test]
async fn a_newer_email_cancels_the_older_link() {
    let server = TestServer::start_with(Options {
        user_rate: (10, 60),
        ..Options::default()
    })
    .await;
    server.add_user("erin@example.com", false).await;
    let first = send(&server, "erin@example.com").await;
    let body = ResetPasswordByAdminRequest::builder().email("erin@example.com");
    server
        .client()
        .reset_password_by_admin()
        .body(body.clone())
        .send()
        .await
        .expect("200");
    let second = latest_link(&server, 2).await;
    assert_ne!(first, second);
    let (status, headers, page) = get(&server, &first).await;
    assert_eq!(status, 410);
    assert_page_headers(&headers);
    assert!(page.contains("This link was cancelled"), "{page}");
    assert_eq!(post(&server, &first, GOOD, GOOD).await.0, 410);
    assert_eq!(get(&server, &second).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn bad_passwords_reshow_the_form_without_echoing_them() {
    let server = TestServer::start().await;
    server.add_user("frank@example.com", false).await;
    let token = send(&server, "frank@example.com").await;
    let too_long = "long passphrase ".repeat(70);
    let cases: [(&str, &str, u16, &str); 5] = [
        (
            GOOD,
            "plum trellis quasar lanterns",
            400,
            "The two passwords are not the same.",
        ),
        (
            "password1234",
            "password1234",
            400,
            "one of the most common ones",
        ),
        ("Short-1!", "Short-1!", 400, "at least 12 characters"),
        (
            "frank@example.com",
            "frank@example.com",
            400,
            "easy to guess",
        ),
        (&too_long, &too_long, 413, "at most 1024 bytes"),
    ];
    for (password, confirm, status, message) in cases {
        let (got, headers, body) = post(&server, &token, password, confirm).await;
        assert_eq!(got, status, "{message}");
        assert_page_headers(&headers);
        assert!(body.contains(message), "{message} missing from {body}");
        assert!(body.contains(r#"<form method="post""#), "form shown again");
        // (The account's email is on the page by design; that case aside,
        // nothing the user typed comes back.)
        if password != "frank@example.com" {
            assert!(
                !body.contains(password),
                "password {password:?} echoed in {body}"
            );
        }
    }
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        link.state,
        LinkState::Open,
        "refusals leave the link usable"
    );
    assert_eq!(post(&server, &token, GOOD, GOOD).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn guessing_links_is_throttled_per_address() {
    let server = TestServer::start_with(Options {
        reset_guess_rate: (3, 600),
        ..Options::default()
    })
    .await;
    server.add_user("gina@example.com", false).await;
    let token = send(&server, "gina@example.com").await;
    for i in 0..3 {
        let (status, _, _) = get(&server, &format!("{}{i}", "B".repeat(42))).await;
        assert_eq!(status, 404);
    }
    let (status, headers, body) = get(&server, &"C".repeat(43)).await;
    assert_eq!(status, 429);
    assert_page_headers(&headers);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=200).contains(&retry), "{retry}");
    assert!(
        body.contains("Too many attempts")
            && body.contains(&format!("Try again in {retry} seconds"))
    );
    // Expired links count like unknown ones (one answer for both).
    // Only failed look-ups count: a real link still opens and submits from
    // the throttled address, so a user behind one NAT with a guesser is not
    // locked out.
    assert_eq!(get(&server, &token).await.0, 200, "a valid link opens");

    // The throttle is keyed per client address: another address's guesses
    // count on their own.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            other
                .get(url(&server, &"D".repeat(43)))
                .send()
                .await
                .unwrap()
        ),
        404,
        "127.0.0.2 is not throttled by 127.0.0.1's guesses"
    );
    assert_eq!(
        get(&server, &"E".repeat(43)).await.0,
        429,
        "127.0.0.1 still is"
    );
    assert_eq!(
        post(&server, &token, GOOD, GOOD).await.0,
        200,
        "and submits"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_guesses_are_counted_exactly() {
    // A clock that stands still: however long the 100 calls take on a busy
    // machine, the limit does not refill meanwhile.
    let server = TestServer::start_with(Options {
        reset_guess_rate: (20, 600),
        clock: Some(Arc::new(ManualClock::new(now()))),
        ..Options::default()
    })
    .await;
    let guesses = (0..100).map(|i| {
        let server = &server;
        async move { get(server, &format!("{:0>43}", i)).await.0 }
    });
    let statuses = futures::future::join_all(guesses).await;
    let not_found = statuses.iter().filter(|s| **s == 404).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (not_found, throttled),
        (20, 80),
        "exactly the limit gets through"
    );
    server.stop().await;
}

#[tokio::test]
async fn expired_links_count_against_the_guess_limit_like_unknown_ones() {
    let clock = Arc::new(ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        reset_guess_rate: (2, 600),
        clock: Some(Arc::clone(&clock)),
        ..Options::default()
    })
    .await;
    server.add_user("old@example.com", false).await;
    let token = send(&server, "old@example.com").await;
    clock.advance_ms(24 * 3600 * 1000 + 1);
    assert_eq!(
        get(&server, &token).await.0,
        404,
        "expired: the unknown page"
    );
    assert_eq!(get(&server, &"F".repeat(43)).await.0, 404);
    assert_eq!(
        get(&server, &token).await.0,
        429,
        "the third failure is over 2"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_posts_of_one_link_set_one_password() {
    let server = TestServer::start().await;
    let user = server.add_user("twice@example.com", false).await;
    let token = send(&server, "twice@example.com").await;
    const OTHER: &str = "amber quokka violin harbour";
    let (a, b) = tokio::join!(
        post(&server, &token, GOOD, GOOD),
        post(&server, &token, OTHER, OTHER)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 410],
        "one wins, the other finds the link used"
    );
    let winner = if a.0 == 200 { GOOD } else { OTHER };
    let loser = if a.0 == 200 { OTHER } else { GOOD };
    let phc = server
        .store()
        .password_hash(user.id)
        .await
        .unwrap()
        .expect("a password is set");
    let hasher = Hasher::new(1, 0);
    assert!(hasher.verify(winner.into(), phc.clone()).await.unwrap());
    assert!(!hasher.verify(loser.into(), phc).await.unwrap());
    let notices = server
        .read_all_outbox()
        .await
        .into_iter()
        .filter(|m| m.kind == pwmail_store::MessageKind::PasswordChanged)
        .count();
    assert_eq!(notices, 1, "one \"password changed\" notice");
    server.stop().await;
}

#[tokio::test]
async fn the_stylesheet_is_served_and_pages_stay_out_of_the_api_document() {
    let server = TestServer::start().await;
    assert!(
        stylesheet(&server, "/assets/reset.css")
            .await
            .contains("main")
    );
    let doc = pwmail_api::pwmail_api_mod::stub_api_description()
        .unwrap()
        .openapi("pwmail", semver::Version::new(1, 0, 0))
        .json()
        .unwrap();
    assert!(doc["paths"].get("/reset/{token}").is_none());
    server.stop().await;
}

/// With one hash slot and no room to wait, submissions that arrive while a
/// hash runs get a 503 form (Retry-After, link still valid) instead of
/// queueing without bound; submitting again works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hash_queue_says_busy_and_keeps_the_link() {
    let server = TestServer::start_with(Options {
        hashing: (1, 0),
        ..Options::default()
    })
    .await;
    for i in 0..8 {
        let email = format!("busy{i}@example.com");
        server.add_user(&email, false).await;
        send(&server, &email).await;
    }
    let emails = server.wait_for_emails(8, DEADLINE).await;
    let links: Vec<String> = emails.iter().filter_map(|e| link_token(e)).collect();
    assert_eq!(links.len(), 8);
    let posts = links.iter().map(|t| post(&server, t, GOOD, GOOD));
    let results = futures::future::join_all(posts).await;
    let busy: Vec<usize> = (0..results.len())
        .filter(|i| results[*i].0 == 503)
        .collect();
    let done = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(done + busy.len(), links.len(), "only 200 or 503");
    assert!(
        done >= 1 && !busy.is_empty(),
        "{done} done, {} busy",
        busy.len()
    );
    for i in &busy {
        let (_, headers, body) = &results[*i];
        assert_eq!(headers.get("retry-after").unwrap(), "5");
        assert!(body.contains("still valid"), "{body}");
        assert_page_headers(headers);
    }
    // The refused ones were not consumed: one at a time they go through.
    for i in &busy {
        let (status, _, body) = post(&server, &links[*i], GOOD, GOOD).await;
        assert_eq!(status, 200, "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_form_is_accepted_only_form_encoded() {
    let server = TestServer::start().await;
    server.add_user("plain@example.com", false).await;
    let token = send(&server, "plain@example.com").await;
    for content_type in ["text/plain", "application/json"] {
        let r = reqwest::Client::new()
            .post(url(&server, &token))
            .header("content-type", content_type)
            .body(format!("password={GOOD}&password_confirm={GOOD}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415, "{content_type}");
        assert_page_headers(r.headers());
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("This form could not be read")
        );
    }
    // The link was not used by the refused posts.
    assert_eq!(post(&server, &token, GOOD, GOOD).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn passwords_are_nfkc_normalised_and_control_characters_refused() {
    let server = TestServer::start().await;
    let user = server.add_user("uni@example.com", false).await;
    let token = send(&server, "uni@example.com").await;
    // NUL and other control characters are refused, with the reason.
    let nul = "plum trellis\u{0}quasar lantern";
    let (status, _, body) = post(&server, &token, nul, nul).await;
    assert_eq!(status, 400);
    assert!(body.contains("control character"), "{body}");

    // Set in composed form (NFC), typed later in decomposed form (NFD).
    let nfc = "cr\u{00e8}me br\u{00fb}l\u{00e9}e lantern quasar";
    let nfd = "cre\u{0300}me bru\u{0302}le\u{0301}e lantern quasar";
    assert_ne!(nfc, nfd);
    assert_eq!(post(&server, &token, nfc, nfc).await.0, 200);
    let check =
        |p: &str| pwmail_server::app::users::check_password(server.store(), &user, p.to_string());
    assert!(check(nfd).await.unwrap(), "the NFD spelling verifies");
    assert!(check(nfc).await.unwrap());
    assert!(!check("creme brulee lantern quasar").await.unwrap());

    // A hash made before normalisation (of the raw NFD text) still verifies.
    let legacy = Hasher::new(1, 0).hash(nfd.to_string()).await.unwrap();
    server
        .store()
        .set_password_hash(user.id, &legacy, now())
        .await
        .unwrap();
    assert!(check(nfd).await.unwrap(), "old hashes keep working");
    server.stop().await;
}

/// A disabled user's open link stops working at once: the page is not the
/// form, and posting to it sets no password.
#[tokio::test]
async fn a_disabled_users_link_stops_working() {
    let server = TestServer::start().await;
    server.add_user("gone@example.com", false).await;
    let token = send(&server, "gone@example.com").await;
    assert_eq!(get(&server, &token).await.0, 200);
    pwmail_server::app::users::disable_user(server.store(), "gone@example.com", now())
        .await
        .unwrap();
    // Revoked in the database, not merely refused because its user is
    // disabled now (the page says the same either way): enabling the user
    // again must not revive it.
    let link = server
        .store()
        .find_link(&pwmail_server::secrets::hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.state, LinkState::Revoked);
    let (status, headers, page) = get(&server, &token).await;
    assert_eq!(status, 410, "{page}");
    assert_page_headers(&headers);
    assert!(page.contains("This link was cancelled"), "{page}");
    assert!(!page.contains("<form"), "{page}");
    assert_eq!(post(&server, &token, GOOD, GOOD).await.0, 410);
    assert!(!verifies(&server, "gone@example.com", GOOD).await);
    server.stop().await;
}

/// A link lives for `--link-ttl-secs` (here 2 hours), whatever the other
/// lifetimes are (Idempotency-Keys keep 24 hours).
#[tokio::test]
async fn a_link_lives_for_the_link_lifetime() {
    let clock = Arc::new(ManualClock::new(now()));
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        link_ttl: Duration::from_secs(2 * 3600),
        idempotency_ttl: Duration::from_secs(24 * 3600),
        ..Options::default()
    })
    .await;
    server.add_user("frank@example.com", false).await;
    let token = send(&server, "frank@example.com").await;
    clock.advance_ms(2 * 3600 * 1000 - 1000);
    assert_eq!(get(&server, &token).await.0, 200, "a second before its end");
    clock.advance_ms(1000);
    assert_eq!(get(&server, &token).await.0, 404, "at its end exactly");
    clock.advance_ms(1000);
    assert_eq!(get(&server, &token).await.0, 404, "a second after its end");
    server.stop().await;
}

/// Setting a password logs the user in nowhere: no response of the page
/// sets a cookie (or any other state in the browser).
#[tokio::test]
async fn the_page_sets_no_cookie() {
    let server = TestServer::start().await;
    server.add_user("nocookie@example.com", false).await;
    let token = send(&server, "nocookie@example.com").await;
    let (status, headers, _) = get(&server, &token).await;
    assert_eq!(status, 200);
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    let (status, headers, page) = post(&server, &token, GOOD, GOOD).await;
    assert_eq!(status, 200, "{page}");
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    assert!(verifies(&server, "nocookie@example.com", GOOD).await);
    let (_, headers, _) = get(&server, &token).await;
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_broken_database_is_an_error_page_not_a_try_again() {
    // A failure that trying again cannot mend (here: a table gone) is the
    // 500 page, without Retry-After; "try again shortly" is for a database
    // that does not answer.
    let server = TestServer::start().await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("DROP TABLE reset_links")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, headers, body) = get(&server, &"A".repeat(43)).await;
    assert_eq!(status, 500, "{body}");
    assert!(headers.get("retry-after").is_none());
    assert!(body.contains("Something went wrong"), "{body}");
    assert_page_headers(&headers);
    server.stop().await;
}

#[tokio::test]
async fn a_link_of_a_user_disabled_without_revoking_it_does_not_open() {
    // Disabling revokes a user's links in the same transaction; a database
    // where a disabled user still has an open link (written some other way)
    // must not let the link in either.
    let server = TestServer::start().await;
    server.add_user("old@example.com", false).await;
    let token = send(&server, "old@example.com").await;
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET disabled_at = ?1 WHERE email_key = 'old@example.com'")
        .bind(now())
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, _, page) = get(&server, &token).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("This link was cancelled"), "{page}");
    assert_eq!(post(&server, &token, GOOD, GOOD).await.0, 410);
    assert!(!verifies(&server, "old@example.com", GOOD).await);
    server.stop().await;
}

/// Mail scanners (Outlook Safe Links among them) have been seen submitting
/// the forms of pages they open: an empty, garbled or mistyped POST must
/// leave the link as it was, for the user.
#[tokio::test]
async fn an_empty_or_garbled_post_never_uses_up_the_link() {
    let server = TestServer::start().await;
    server.add_user("erin@example.com", false).await;
    let token = send(&server, "erin@example.com").await;
    let form = Some("application/x-www-form-urlencoded");
    for (content_type, body) in [
        (form, ""),
        (form, "%%%=&&=="),
        (form, "password=&password_confirm="),
        (form, "password=plum+trellis+quasar+lantern"),
        (None, ""),
        (Some("text/plain"), "password=x&password_confirm=x"),
    ] {
        let mut request = reqwest::Client::new().post(url(&server, &token)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{content_type:?} {body:?}: {status}"
        );
        let link = server
            .store()
            .find_link(&pwmail_server::secrets::hash(&token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(link.state, LinkState::Open, "{content_type:?} {body:?}");
    }
    assert_eq!(get(&server, &token).await.0, 200);
    assert_eq!(post(&server, &token, GOOD, GOOD).await.0, 200);
    assert!(verifies(&server, "erin@example.com", GOOD).await);
    server.stop().await;
}

/// The operator's look: page templates under `--template-dir/page/`
/// replace the built-in ones (the others stay), and `--page-css` is served
/// from pwmail and linked from every page, after the built-in stylesheet,
/// under the same CSP (`style-src 'self'`).
#[tokio::test]
async fn page_templates_are_overridden_and_the_operators_stylesheet_is_linked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("page")).unwrap();
    std::fs::write(
        dir.path().join("page/done.html"),
        r#"{% extends "page/base.html" %}{% block title %}Done{% endblock %}
{% block content %}<p id="branded">Welcome back to Example Corp, {{ email }}.</p>{% endblock %}"#,
    )
    .unwrap();
    let assets = tempfile::tempdir().unwrap();
    let css = assets.path().join("brand.css");
    std::fs::write(&css, "main { color: #123456; }\n").unwrap();
    let server = TestServer::start_with(Options {
        template_dir: Some(dir.path().to_path_buf()),
        page_css: Some(css),
        ..Options::default()
    })
    .await;
    server.add_user("hello@example.com", false).await;
    let token = send(&server, "hello@example.com").await;

    // The form is the built-in one, with both stylesheets, in order.
    let (status, headers, form) = get(&server, &token).await;
    assert_eq!(status, 200);
    assert_page_headers(&headers);
    let builtin = form
        .find(r#"href="/assets/reset.css""#)
        .expect("built-in css");
    let branded = form
        .find(r#"href="/assets/page.css""#)
        .expect("operator css");
    assert!(builtin < branded, "the operator's sheet comes last");
    assert!(form.contains(r#"name="password""#));
    // The done page is the operator's.
    let (status, _, done) = post(&server, &token, GOOD, GOOD).await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done.contains(r#"<p id="branded">Welcome back to Example Corp, hello@example.com.</p>"#),
        "{done}"
    );
    // Problem pages link it too.
    let (status, _, problem) = get(&server, "nosuchlinknosuchlinknosuchlink0000").await;
    assert_eq!(status, 404);
    assert!(problem.contains(r#"href="/assets/page.css""#), "{problem}");

    assert_eq!(
        stylesheet(&server, "/assets/page.css").await,
        "main { color: #123456; }\n"
    );
    server.stop().await;

    // Without --page-css, nothing is linked and nothing served.
    let server = TestServer::start().await;
    let (_, _, problem) = get(&server, "nosuchlinknosuchlinknosuchlink0000").await;
    assert!(problem.contains("/assets/reset.css"), "{problem}");
    assert!(!problem.contains("/assets/page.css"), "{problem}");
    let r = reqwest::get(server.endpoint("/assets/page.css"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    server.stop().await;
}
