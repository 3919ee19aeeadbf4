//! The fixture document's operation round-trips through the generated
//! trait and the generated client: every parameter location and the
//! body arrive at the handler, and the typed response comes back.

use codegen_fixture::api::{
    FixtureApi, PutUserNoteHeaders, PutUserNotePath, PutUserNoteQuery, fixture_api_mod,
};
use codegen_fixture::types::{StoredUserNote, UserNote};
use codegen_fixture::{FixtureError, client};
use dropshot::{HttpResponseCreated, Path, Query, RequestContext, TypedBody};

enum FixtureImpl {}

impl FixtureApi for FixtureImpl {
    type Context = ();

    async fn put_user_note(
        _rqctx: RequestContext<()>,
        path: Path<PutUserNotePath>,
        query: Query<PutUserNoteQuery>,
        headers: dropshot::Header<PutUserNoteHeaders>,
        body: TypedBody<UserNote>,
    ) -> Result<HttpResponseCreated<StoredUserNote>, FixtureError> {
        let (path, query, headers) = (path.into_inner(), query.into_inner(), headers.into_inner());
        Ok(HttpResponseCreated(StoredUserNote {
            note: body.into_inner(),
            user_id: path.user_id as i64,
            namespace: path.namespace,
            dry_run: query.dry_run.unwrap_or(false),
            limit: query.limit,
            tag: headers.x_request_tag,
        }))
    }
}

#[tokio::test]
async fn extra_operation_round_trips_through_trait_and_client() {
    let api = fixture_api_mod::api_description::<FixtureImpl>().expect("api description");
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let config = dropshot::ConfigDropshot {
        bind_address: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let server = dropshot::ServerBuilder::new(api, (), log)
        .config(config)
        .start()
        .expect("server starts");
    let url = format!("http://{}", server.local_addr());
    let client = client::Client::new(&url);

    let stored = client
        .put_user_note()
        .namespace("system")
        .user_id(42)
        .dry_run(true)
        .limit(7)
        .x_request_tag("tag-1")
        .body(
            UserNote::builder()
                .text("hello")
                .labels(vec!["a".into(), "b".into()]),
        )
        .send()
        .await
        .expect("call succeeds");
    assert_eq!(stored.status(), 201);
    let stored = stored.into_inner();
    assert_eq!(stored.user_id, 42);
    assert_eq!(stored.namespace, "system");
    assert!(stored.dry_run);
    assert_eq!(stored.limit, 7);
    assert_eq!(stored.tag, "tag-1");
    assert_eq!(stored.note.labels, vec!["a".to_string(), "b".to_string()]);

    // The body's maxLength from the document is enforced by the shared types.
    let too_long = "x".repeat(201);
    assert!(codegen_fixture::types::UserNoteText::try_from(too_long.as_str()).is_err());

    server.close().await.unwrap();
}

#[test]
fn emitted_document_has_the_extra_operation() {
    let api = fixture_api_mod::stub_api_description().expect("stub description");
    let doc = api
        .openapi("fixture", semver::Version::new(1, 0, 0))
        .json()
        .unwrap();
    let op = &doc["paths"]["/api/web/custom/namespaces/{namespace}/users/{user_id}/notes"]["put"];
    assert_eq!(op["operationId"], "put_user_note");
    let names: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "namespace",
        "user_id",
        "dry_run",
        "limit",
        "X-Request-Tag",
        "Authorization",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UserNote"
    );
}
