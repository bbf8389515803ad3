//! Edits made to the database by hand (or by another process) are picked up within a
//! second: the server follows `PRAGMA data_version` and loads what changed.

mod common;

use std::time::{Duration, Instant};

use common::{deploy_ok, example, server};
use serde_json::Value;

/// Retries `check` for up to five seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn config_and_deletes_edited_in_the_database_take_effect() {
    let server = server();
    deploy_ok(&server, "hook", "c", &example("hello.c"), Value::Null).await;
    let anonymous = server.anonymous_client();
    let url = server.endpoint("/invoke/hook");
    assert_eq!(anonymous.post(&url).send().await.unwrap().status(), 401);

    let db = rusqlite::Connection::open(server.data_dir().join("minifaas.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE versions SET config = json_set(config, '$.public', json('true'))
             WHERE name = 'hook'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    eventually("a config edit", || async {
        anonymous.post(&url).send().await.unwrap().status() == 200
    })
    .await;

    db.execute("DELETE FROM versions WHERE name = 'hook'", [])
        .unwrap();
    db.execute("DELETE FROM functions WHERE name = 'hook'", [])
        .unwrap();
    eventually("a delete", || async {
        common::call(&server, "hook", "").await.0 == 404
    })
    .await;
}
