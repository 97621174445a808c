//! TLS without a proxy: `map-relay serve --tls-cert/--tls-key` with a test
//! CA made here, a seller and a buyer using `wss://` with `--ca-file`, and a
//! participant without the CA refused with a certificate error (exit 3).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use map_e2e::{Participant, bin, run_with_timeout};

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

/// `map-relay serve` with TLS; killed on drop.
struct TlsRelay {
    child: Child,
    url: String,
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay(args: &[&Path]) -> Command {
    let mut cmd = Command::new(bin("map-relay"));
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

fn serve(dir: &Path, cert: &Path, key: &Path) -> TlsRelay {
    let mut child = relay(&[])
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("relay.db"))
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn map-relay serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let mut relay = TlsRelay {
        child,
        url: String::new(),
    };
    let line = line.expect("map-relay prints its listening line");
    let url = line
        .strip_prefix("map-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert!(url.starts_with("wss://127.0.0.1:"), "{line:?}");
    relay.url = url.to_string();
    relay
}

#[test]
fn wss_relay_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let db = dir.path().join("relay.db");
    let out = run_with_timeout(
        {
            let mut c = relay(&[]);
            c.args(["user", "add", "dana", "--data"]).arg(&db);
            c
        },
        Duration::from_secs(20),
    );
    out.ok();
    let token = out.line();
    let relay = serve(dir.path(), &cert, &key);
    let ca_arg = ca.to_str().unwrap();

    let seller = Participant::new("Dana", "seller");
    let plan = seller.init_plan("Acme rollout", "saas");
    seller
        .map(&[
            "remote",
            "add",
            "origin",
            &relay.url,
            "--token",
            &token,
            "--ca-file",
            ca_arg,
        ])
        .ok();
    seller.sync().ok();
    let invite = seller.share("rw", "buyer");
    assert!(
        invite.starts_with(&format!("{}/join/", relay.url)),
        "invite {invite:?} must be {}/join/SECRET",
        relay.url
    );

    let buyer = Participant::new("Ana", "buyer");
    buyer.map(&["join", &invite, "--ca-file", ca_arg]).ok();
    assert!(buyer.plans().iter().any(|p| p["id"] == plan.as_str()));
    // The CA file was stored with the remote: later syncs need no flag.
    buyer.sync().ok();

    // Without the CA: a clear certificate error, exit 3, nothing fetched.
    let mut carol = Participant::new("Carol", "seller");
    carol
        .map(&["remote", "add", "origin", &relay.url, "--token", &token])
        .ok();
    carol
        .sync()
        .code_is(3)
        .stderr_has("certificate")
        .stderr_has("--ca-file");
    assert!(carol.plans().is_empty());
    // MAP_CA_FILE applies to every relay without a stored CA file.
    carol.set_env("MAP_CA_FILE", ca_arg);
    carol.sync().ok();
    assert!(carol.plans().iter().any(|p| p["id"] == plan.as_str()));

    // A CA file that is not a certificate is refused up front (exit 1).
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "hello").unwrap();
    seller
        .map(&[
            "remote",
            "add",
            "other",
            &relay.url,
            "--token",
            &token,
            "--ca-file",
            bogus.to_str().unwrap(),
        ])
        .code_is(1)
        .stderr_has("bogus.pem");
}

#[test]
fn serve_refuses_unusable_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, cert, key) = make_certs(dir.path());
    let missing = dir.path().join("missing.pem");
    let db = dir.path().join("relay.db");
    let run = |args: &[&Path]| {
        let mut c = relay(&[]);
        c.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&db)
            .args(args);
        run_with_timeout(c, Duration::from_secs(20))
    };
    let flag_cert = Path::new("--tls-cert");
    let flag_key = Path::new("--tls-key");
    run(&[flag_cert, &missing, flag_key, &key])
        .code_is(1)
        .stderr_has("missing.pem");
    // The certificate given as the key: no private key in it.
    run(&[flag_cert, &cert, flag_key, &cert])
        .code_is(1)
        .stderr_has("private key");
    // The key given as the certificate: no certificate in it.
    run(&[flag_cert, &key, flag_key, &key])
        .code_is(1)
        .stderr_has("no certificate");
    // Both or neither.
    run(&[flag_cert, &cert]).code_is(2);
}
