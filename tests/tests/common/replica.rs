//! A collector replica on a "host" of its own: `forewarn-collector serve`
//! started in one namespace of a [`Lab`] (`ip netns exec`), for
//! `replicas.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::netns::Lab;
use super::{Proc, bin, serve_until_ready};

/// One `forewarn-collector serve` in namespace `i` of the lab.
pub struct Replica {
    pub i: usize,
    pub config: PathBuf,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub proc: Option<Proc>,
}

impl Replica {
    pub fn start(lab: &Lab, i: usize, config: PathBuf) -> Self {
        let log = config.with_file_name("collector.log");
        let cmd = lab.command(i, &bin("forewarn-collector"));
        let (proc, grpc, http) = serve_until_ready(cmd, &config, log, &format!("replica {i}"));
        Replica {
            i,
            grpc,
            http,
            config,
            proc: Some(proc),
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.grpc)
    }

    pub fn kill9(&mut self) {
        let mut proc = self.proc.take().expect("running");
        proc.child.kill().expect("kill -9 replica");
        proc.child.wait().expect("reap replica");
    }

    /// A collector CLI command on this replica's config, from the root
    /// namespace (the database is reachable from there too).
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = Command::new(bin("forewarn-collector"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run collector cli");
        assert!(
            out.status.success(),
            "collector {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }
}
