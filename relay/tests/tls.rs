//! The relay served over TLS (`RelayConfig::tls`, `serve --tls-cert/--tls-key`):
//! a client trusting the test CA connects over `wss://`, handshakes and
//! syncs; invites say `wss://`; a client without the CA is refused by
//! certificate verification; a TLS handshake that never comes is cut off.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use automerge::AutoCommit;
use common::*;
use map_relay::TlsFiles;
use map_sync::{ConnectOptions, Connection, DocOutcome, SyncDoc, SyncError};
use tokio::io::AsyncReadExt;

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files
/// in `dir`: (ca.pem, cert.pem, key.pem).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "map test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

async fn tls_relay(dir: &Path) -> (TestRelay, PathBuf) {
    let (ca, cert, key) = make_certs(dir);
    let relay = TestRelay::start_with(|c| {
        c.tls = Some(TlsFiles { cert, key });
        c.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    (relay, ca)
}

fn options(relay: &TestRelay, token: &str, ca: Option<&Path>) -> ConnectOptions {
    let mut opts = ConnectOptions::new(format!("wss://{}/", relay.addr), Some(token.into()));
    opts.ca_file = ca.map(Path::to_path_buf);
    opts.timeout = Duration::from_secs(5);
    opts.settle = Duration::from_millis(500);
    opts
}

#[tokio::test]
async fn wss_with_the_ca_syncs_and_invites_say_wss() {
    tokio::time::timeout(Duration::from_secs(25), async {
        let certs = tempfile::tempdir().unwrap();
        let (mut relay, ca) = tls_relay(certs.path()).await;
        let token = relay.add_user("olivia");
        let plan = Replica::new_plan("Acme");
        let id = plan.doc_id.clone();
        let heads = plan.heads();

        // Push the plan over wss.
        let mut conn = Connection::connect(options(&relay, &token, Some(&ca)))
            .await
            .expect("connect over wss with the CA");
        let doc = AutoCommit::load(&plan.doc.save()).unwrap();
        let mut docs = vec![SyncDoc::new(id.clone(), doc)];
        let reports = conn.sync(&mut docs, |_, _| Ok(())).await.unwrap();
        assert_eq!(reports[0].outcome, DocOutcome::InSync);
        conn.close().await;

        // The HTTP API over https: the invite uses wss://.
        let ca_pem = std::fs::read(&ca).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
            .build()
            .unwrap();
        let reply: serde_json::Value = http
            .post(format!("https://{}/v1/invites", relay.addr))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "plan": id, "access": "ro" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let invite = reply["invite"].as_str().unwrap();
        assert!(
            invite.starts_with(&format!("wss://{}/join/", relay.addr)),
            "{invite}"
        );

        // Fetch it back on a new connection, kept open while the relay stops.
        let mut conn = Connection::connect(options(&relay, &token, Some(&ca)))
            .await
            .unwrap();
        let mut docs = vec![SyncDoc::wanted(id.clone())];
        conn.sync(&mut docs, |_, _| Ok(())).await.unwrap();
        assert_eq!(docs[0].doc.get_heads(), heads);
        relay.stop().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn without_the_ca_the_certificate_is_refused() {
    tokio::time::timeout(Duration::from_secs(25), async {
        let certs = tempfile::tempdir().unwrap();
        let (relay, _ca) = tls_relay(certs.path()).await;
        let token = relay.add_user("olivia");

        let err = Connection::connect(options(&relay, &token, None))
            .await
            .expect_err("untrusted certificate");
        assert!(matches!(err, SyncError::Certificate { .. }), "{err:?}");
        assert!(err.to_string().contains("--ca-file"), "{err}");
        assert!(err.is_permanent());

        // A plain tokio-tungstenite client that trusts no root at all.
        let roots = rustls::RootCertStore::empty();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let result = tokio_tungstenite::connect_async_tls_with_config(
            format!("wss://{}/", relay.addr),
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))),
        )
        .await;
        let err = result.expect_err("no trusted root");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );

        // A CA file that is not PEM is refused before connecting.
        let bogus = certs.path().join("bogus.pem");
        std::fs::write(&bogus, "not a certificate").unwrap();
        let err = Connection::connect(options(&relay, &token, Some(&bogus)))
            .await
            .expect_err("bad CA file");
        assert!(matches!(err, SyncError::CaFile { .. }), "{err:?}");

        // The relay keeps serving clients that trust it.
        let ca = certs.path().join("ca.pem");
        let conn = Connection::connect(options(&relay, &token, Some(&ca)))
            .await
            .unwrap();
        conn.close().await;
    })
    .await
    .expect("test took too long");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let certs = tempfile::tempdir().unwrap();
        let (relay, _ca) = tls_relay(certs.path()).await;
        let mut stream = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
        // Send nothing: the relay must close within the 1 s timeout (+ slack).
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the relay closes a silent connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    })
    .await
    .expect("test took too long");
}
