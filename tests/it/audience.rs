//! Who may see what on the HTTP endpoint (DESIGN.md §6.4), through the real binary: every
//! `/api/v1` route with no token, a wrong token, a client token (its own contract and another)
//! and the operator token; the tokens appear in no log.

use crate::support::{DaemonProcess, TestTcp, Workspace};

const OPERATOR: &str = "operator-token-5f1c";
const ACME: &str = "acme-client-token-77d2";
const BETA: &str = "beta-client-token-0b9e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_answers_each_audience_with_what_it_may_see() {
    let tcp = TestTcp::start(None).await;
    let ws = Workspace::new();
    let mut config = String::from(
        "[daemon]\ndatabase = \"slaprobe.db\"\nlisten = \"127.0.0.1:0\"\n\
         public_contracts = [\"open\"]\noperator_token_env = \"SLAPROBE_TEST_OPERATOR\"\n\n",
    );
    for (id, token_env) in [
        ("open", None),
        ("acme", Some("SLAPROBE_TEST_ACME")),
        ("beta", Some("SLAPROBE_TEST_BETA")),
    ] {
        config.push_str(&format!(
            "[[contract]]\nid = \"{id}\"\nclient = \"{id}\"\ntarget = \"99.9%\"\n"
        ));
        if let Some(env) = token_env {
            config.push_str(&format!("client_token_env = \"{env}\"\n"));
        }
        config.push_str(&format!(
            "\n[[service]]\nid = \"{id}-api\"\ncontract = \"{id}\"\ntcp = \"{}\"\n\
             interval = \"1s\"\ntimeout = \"500ms\"\n\n",
            tcp.addr
        ));
    }
    ws.config_text(&config);
    let daemon = DaemonProcess::spawn(
        &ws,
        &[
            ("SLAPROBE_TEST_OPERATOR", OPERATOR),
            ("SLAPROBE_TEST_ACME", ACME),
            ("SLAPROBE_TEST_BETA", BETA),
        ],
    );
    let base = format!("http://{}", daemon.endpoint().await);

    // The crate's prober installs the TLS crypto provider reqwest needs.
    slaprobe::probe::Prober::new().unwrap();
    let client = reqwest::Client::new();
    let month = {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        format!("{:04}-{:02}", now.year(), now.month())
    };
    let get = |path: String, token: Option<&'static str>| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut request = client.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // (token, which contracts it sees)
    let audiences: [(&str, Option<&'static str>, &[&str]); 4] = [
        ("no token", None, &["open"]),
        ("a wrong token", Some("not-a-token"), &[]),
        ("acme's client token", Some(ACME), &["acme"]),
        (
            "the operator token",
            Some(OPERATOR),
            &["open", "acme", "beta"],
        ),
    ];
    for (who, token, sees) in audiences {
        let wrong = token == Some("not-a-token");
        for contract in ["open", "acme", "beta"] {
            let routes = [
                format!("/api/v1/services/{contract}-api"),
                format!("/api/v1/report?service={contract}-api&last=1h"),
                format!("/api/v1/report?contract={contract}&last=1h"),
                format!("/api/v1/contracts/{contract}/statements/{month}"),
            ];
            for route in routes {
                let (status, body) = get(route.clone(), token).await;
                let expected = if wrong {
                    401
                } else if sees.contains(&contract) {
                    200
                } else {
                    404
                };
                assert_eq!(status, expected, "{who} GET {route}: {body}");
            }
        }
        // The list holds exactly the services of the contracts this audience sees.
        let (status, body) = get("/api/v1/services".into(), token).await;
        if wrong {
            assert_eq!(status, 401, "{who}: {body}");
            continue;
        }
        assert_eq!(status, 200, "{who}: {body}");
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut ids: Vec<String> = listed["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["service"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        let mut expected: Vec<String> = sees.iter().map(|c| format!("{c}-api")).collect();
        expected.sort();
        assert_eq!(ids, expected, "{who}");
    }
    // A client token is not an operator token, nor beta's.
    let (status, _) = get("/api/v1/services/beta-api".into(), Some(ACME)).await;
    assert_eq!(status, 404);
    // The open routes answer everyone.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/daemon", "/"] {
        let (status, _) = get(path.into(), None).await;
        assert_eq!(status, 200, "{path}");
    }

    let (_, log) = daemon.stop().await;
    for token in [OPERATOR, ACME, BETA] {
        assert!(!log.contains(token), "a token in the log");
    }
}
