//! The PostgreSQL store against a real server (a throwaway cluster, `pg_server`).

use slaprobe::store::pg::{self, PgTarget, schema};

use crate::pg_server::PgServer;

fn target(url: String) -> PgTarget {
    PgTarget {
        url,
        password_env: None,
    }
}

/// A new database gets the whole schema; connecting again changes nothing; three daemons
/// starting at once take turns (one migrates, two find it done); a newer schema is refused.
#[test]
fn the_schema_migrates_once_even_when_three_daemons_start_together() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("fleet");
    let racers: Vec<_> = (0..3)
        .map(|_| {
            let t = target(url.clone());
            std::thread::spawn(move || pg::connect(&t).map(|_| ()))
        })
        .collect();
    for racer in racers {
        racer.join().unwrap().unwrap_or_else(|e| panic!("{e:?}"));
    }
    let mut client = pg::connect(&target(url.clone())).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::VERSION);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM slaprobe_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // Every table a location writes carries the location.
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE column_name = 'location' AND table_schema = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "blip",
            "failure",
            "incident",
            "meta",
            "no_data",
            "outcome_chunk",
            "rollup_hour",
            "rollup_pending",
            "service_location"
        ]
    );

    client
        .execute(
            "UPDATE slaprobe_schema SET version = $1",
            &[&(schema::VERSION as i64 + 1)],
        )
        .unwrap();
    let refused = pg::connect(&target(url)).map(|_| ()).unwrap_err();
    assert!(format!("{:?}", refused).contains("TooNew"), "{refused:?}");
}

/// A server that is not there: the error names where it looked, never a password.
#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let empty = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql:///fleet?host={}&user=slaprobe&password=hunter2",
        empty.path().display()
    );
    let e = pg::connect(&target(url)).map(|_| ()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&empty.path().display().to_string()), "{text}");
    assert!(text.contains("/fleet"), "{text}");
    assert!(!format!("{e:?}{text}").contains("hunter2"));
    assert!(pg::is_url("postgres://db.example/slaprobe"));
    assert!(pg::is_url("postgresql:///slaprobe?host=/run/postgresql"));
    assert!(!pg::is_url("slaprobe.db"));
}

/// The harness's outage: a stopped server refuses connections, and after a start the same
/// database is there with its schema.
#[test]
fn a_stopped_server_comes_back_with_its_data() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.database("fleet");
    drop(pg::connect(&target(url.clone())).unwrap());
    server.stop();
    assert!(pg::connect_only(&target(url.clone())).is_err());
    server.start_again();
    let mut client = pg::connect_only(&target(url)).unwrap();
    assert_eq!(schema::version(&mut client).unwrap(), schema::VERSION);
}
