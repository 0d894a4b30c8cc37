use super::*;

fn csr() -> (KeyPair, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["evil.example".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "someone-else");
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (key, pem)
}

#[test]
fn ca_is_created_once_with_private_key_mode() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = Ca::load_or_create(&dir.path().join("pki")).expect("create");
    let b = Ca::load_or_create(&dir.path().join("pki")).expect("load");
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert!(a.fingerprint().starts_with("sha256:"));
    assert_eq!(a.fingerprint().len(), 7 + 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("pki/ca.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn agent_identity_comes_from_collector_not_csr() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::load_or_create(dir.path()).expect("ca");
    let (_key, csr) = csr();
    let cert = ca
        .sign_agent_csr(&csr, "agent-1", "tenant-1", time::Duration::days(30))
        .expect("sign");
    let der = pem_to_der(&cert.chain_pem).expect("der");
    let id = peer_identity(&der).expect("identity");
    assert_eq!(
        id,
        PeerIdentity {
            agent_id: "agent-1".into(),
            tenant_id: "tenant-1".into()
        }
    );
}

#[test]
fn garbage_csr_is_invalid_argument() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::load_or_create(dir.path()).expect("ca");
    let err = ca
        .sign_agent_csr(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "a",
            "t",
            time::Duration::days(1),
        )
        .err()
        .expect("must fail");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn server_certificate_is_not_an_agent_identity() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::load_or_create(dir.path()).expect("ca");
    let (chain, _key) = ca
        .server_identity(&["localhost".to_string()])
        .expect("server");
    let der = pem_to_der(&chain).expect("der");
    assert!(peer_identity(&der).is_err());
}
