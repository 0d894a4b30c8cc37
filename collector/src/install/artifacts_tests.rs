//! Artifact names, signature checks and the index, on a temp releases dir
//! signed with a key made here.

use super::*;

struct Signed {
    dir: tempfile::TempDir,
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Signed {
    fn new() -> Self {
        let kp = minisign::KeyPair::generate_unencrypted_keypair().expect("keypair");
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            pk: kp.pk,
            sk: kp.sk,
        }
    }

    /// Writes `name` with `body` and a signature whose trusted comment
    /// names `signed_as`.
    fn put(&self, name: &str, body: &[u8], signed_as: &str) {
        std::fs::write(self.dir.path().join(name), body).expect("write");
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            body,
            Some(&format!("file:{signed_as} version:1.0.0")),
            None,
        )
        .expect("sign");
        std::fs::write(
            self.dir.path().join(format!("{name}.minisig")),
            sig.into_string(),
        )
        .expect("write sig");
    }

    fn releases(&self) -> Releases {
        Releases::new(self.dir.path().to_owned(), Some(&self.pk.to_base64())).expect("releases")
    }
}

#[test]
fn names_say_kind_version_os_and_cpu() {
    let p = |n: &str| parse_name(n).map(|(k, v, o, a)| (k, v, o, a));
    assert_eq!(
        p("forewarn-agent_1.2.3-1_amd64.deb"),
        Some((Kind::Deb, "1.2.3".into(), "linux", "x86_64"))
    );
    assert_eq!(
        p("forewarn-agent-1.2.3-1.x86_64.rpm"),
        Some((Kind::Rpm, "1.2.3".into(), "linux", "x86_64"))
    );
    assert_eq!(
        p("forewarn-agent-1.2.3-x64.msi"),
        Some((Kind::Msi, "1.2.3".into(), "windows", "x86_64"))
    );
    assert_eq!(
        p("forewarn-agent-1.2.3-x86_64-unknown-linux-gnu"),
        Some((Kind::Binary, "1.2.3".into(), "linux", "x86_64"))
    );
    assert_eq!(
        p("forewarn-agent-2.0.0-rc.1-aarch64-apple-darwin"),
        Some((Kind::Binary, "2.0.0-rc.1".into(), "macos", "aarch64"))
    );
    assert_eq!(
        p("forewarn-agent-1.2.3-x86_64-pc-windows-gnu.exe"),
        Some((Kind::Binary, "1.2.3".into(), "windows", "x86_64"))
    );
    for other in [
        "forewarn-collector_1.2.3-1_amd64.deb",
        "forewarn-agent_1.2.3-1_amd64.deb.minisig",
        "forewarn-agent-1.2.3-x86_64-pc-windows-gnu",
        "forewarn-agent-1.2-x86_64-unknown-linux-gnu",
        "forewarn-agent_1.2.3-1_i386.deb",
        "README",
    ] {
        assert_eq!(p(other), None, "{other}");
    }
}

#[test]
fn only_plain_file_names_are_safe() {
    assert!(safe_name("forewarn-agent_1.2.3-1_amd64.deb"));
    for bad in [
        "",
        "../etc/passwd",
        "a/b",
        ".hidden",
        "..",
        "a\\b",
        "a%2fb",
        "a b",
    ] {
        assert!(!safe_name(bad), "{bad:?}");
    }
}

#[tokio::test]
async fn the_index_lists_signed_artifacts_newest_first() {
    let s = Signed::new();
    s.put(
        "forewarn-agent_1.0.0-1_amd64.deb",
        b"old",
        "forewarn-agent_1.0.0-1_amd64.deb",
    );
    s.put(
        "forewarn-agent_1.10.0-1_amd64.deb",
        b"new",
        "forewarn-agent_1.10.0-1_amd64.deb",
    );
    s.put(
        "forewarn-agent_1.2.0-1_amd64.deb",
        b"mid",
        "forewarn-agent_1.2.0-1_amd64.deb",
    );
    // No signature: not offered.
    std::fs::write(s.dir.path().join("forewarn-agent-1.9.0-1.x86_64.rpm"), b"x").expect("write");
    // Signed for another name: not offered.
    s.put(
        "forewarn-agent-1.9.0-x64.msi",
        b"y",
        "forewarn-agent-1.0.0-x64.msi",
    );
    let files: Vec<String> = s
        .releases()
        .index()
        .await
        .expect("index")
        .into_iter()
        .map(|a| a.file)
        .collect();
    assert_eq!(
        files,
        [
            "forewarn-agent_1.10.0-1_amd64.deb",
            "forewarn-agent_1.2.0-1_amd64.deb",
            "forewarn-agent_1.0.0-1_amd64.deb"
        ]
    );
}

#[tokio::test]
async fn a_tampered_artifact_is_neither_listed_nor_served() {
    let s = Signed::new();
    let name = "forewarn-agent-1.0.0-x86_64-unknown-linux-gnu";
    s.put(name, b"the agent", name);
    let r = s.releases();
    assert_eq!(r.read(name).await.expect("served"), b"the agent");
    assert!(r.read(&format!("{name}.minisig")).await.is_ok());
    std::fs::write(s.dir.path().join(name), b"the agent, altered").expect("write");
    let err = r.read(name).await.expect_err("refused");
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert!(r.read(&format!("{name}.minisig")).await.is_err());
    assert!(r.index().await.expect("index").is_empty());
}

#[tokio::test]
async fn another_key_or_no_key_serves_nothing() {
    let s = Signed::new();
    let name = "forewarn-agent-1.0.0-x86_64-unknown-linux-gnu";
    s.put(name, b"the agent", name);
    let other = minisign::KeyPair::generate_unencrypted_keypair().expect("keypair");
    let r = Releases::new(s.dir.path().to_owned(), Some(&other.pk.to_base64())).expect("releases");
    assert!(r.read(name).await.is_err());
    assert!(r.index().await.expect("index").is_empty());
    let r = Releases::new(s.dir.path().to_owned(), None).expect("releases");
    let err = r.read(name).await.expect_err("no key");
    assert!(err.to_string().contains("public_key"), "{err}");
}

#[tokio::test]
async fn paths_outside_the_dir_are_refused_before_any_read() {
    let s = Signed::new();
    let err = s
        .releases()
        .read("../forewarn.db")
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn a_bad_public_key_names_the_key() {
    let err = Releases::new(PathBuf::from("/x"), Some("not a key")).expect_err("bad");
    assert!(err.to_string().contains("[releases] public_key"), "{err}");
}
