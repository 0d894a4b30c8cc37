//! The agent library's error type: every failure a caller can see, each
//! naming what it was doing (file, URL, key) so `main` can print a one-line
//! cause chain.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong at the library boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The config file is not valid TOML or has unknown / mistyped keys.
    #[error("invalid config file {}: {message}", path.display())]
    ConfigParse { path: PathBuf, message: String },

    /// The config parsed but some values are out of range; one entry per key.
    #[error("invalid config {}: {}", source_name, problems.join("; "))]
    ConfigInvalid {
        source_name: String,
        problems: Vec<String>,
    },

    /// A collector URL that is not `https://HOST[:PORT]`.
    #[error("invalid collector url {url:?}: {reason}")]
    CollectorUrl { url: String, reason: String },

    /// A CA fingerprint that is not 32 bytes of hex.
    #[error("invalid CA fingerprint {input:?}: {reason}")]
    Fingerprint { input: String, reason: String },

    /// The collector did not present the pinned CA.
    #[error(
        "collector CA fingerprint mismatch: expected {expected}, collector presented {presented}"
    )]
    FingerprintMismatch { expected: String, presented: String },

    /// TCP connect or TLS handshake to the collector failed.
    #[error("cannot reach collector at {url}")]
    Connect {
        url: String,
        #[source]
        source: io::Error,
    },

    /// The gRPC channel could not be set up (TLS config, connect).
    #[error("cannot connect to collector at {url}")]
    Transport {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },

    /// The collector answered an RPC with an error status.
    #[error("collector refused {call}: {message} (grpc status {code:?})")]
    Rejected {
        call: &'static str,
        code: tonic::Code,
        message: String,
    },

    /// The collector sent something the agent cannot use.
    #[error("collector sent an invalid response: {0}")]
    Protocol(String),

    /// Key pair or CSR generation failed.
    #[error("cannot create key pair or certificate request")]
    Csr(#[from] rcgen::Error),

    /// `enroll` without `--force` on an enrolled agent.
    #[error(
        "already enrolled as agent {agent_id} (state dir {}); pass --force to enroll again",
        dir.display()
    )]
    AlreadyEnrolled { agent_id: String, dir: PathBuf },

    /// `run` before `enroll`.
    #[error("not enrolled: {} not found; run `forewarn-agent enroll` first", path.display())]
    NotEnrolled { path: PathBuf },

    /// A state-dir file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A state-dir file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `identity.json` exists but is not what the agent wrote.
    #[error("invalid identity file {}", path.display())]
    IdentityFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A PEM file in the state dir holds no usable certificate.
    #[error("invalid certificate file {}: {reason}", path.display())]
    CertificateFile { path: PathBuf, reason: String },

    /// sysinfo could not read host data.
    #[error("cannot read host information: {0}")]
    Host(String),

    /// A blocking task died (a panic in host sampling or file I/O).
    #[error("background task failed")]
    Task(#[from] tokio::task::JoinError),

    /// Installing a signal handler failed.
    #[error("cannot install signal handler")]
    Signal(#[source] io::Error),
}

impl Error {
    /// Whether this error comes from the configuration (exit code 2, or
    /// UNKNOWN for `check`) rather than from the host or the collector.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::ConfigRead { .. }
                | Self::ConfigParse { .. }
                | Self::ConfigInvalid { .. }
                | Self::CollectorUrl { .. }
                | Self::Fingerprint { .. }
        )
    }

    /// Whether another collector address might answer differently: it
    /// could not be reached, or answered as a collector that cannot serve
    /// now would (unavailable, its database away). A refusal (token,
    /// identity, CA mismatch, rate limit) would be the same everywhere.
    pub fn try_elsewhere(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Rejected { code, .. } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
                    | tonic::Code::Internal
            ),
            _ => false,
        }
    }

    /// A gRPC status from `call`, keeping only what a person needs to read.
    pub fn rejected(call: &'static str, status: &tonic::Status) -> Self {
        Self::Rejected {
            call,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// Result with the agent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and its sources on one line, `outer: inner: root`, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut last = line.clone();
    let mut source = error.source();
    while let Some(e) = source {
        // hyper and tonic wrap errors in layers that repeat the same text.
        let text = e.to_string();
        if text != last {
            line.push_str(": ");
            line.push_str(&text);
            last = text;
        }
        source = e.source();
    }
    line
}
