//! The collector's address: parsing `https://HOST[:PORT]` and building the
//! tonic endpoint (timeouts, keep-alive, TLS) that enrollment and the
//! session both use.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::error::{Error, Result};

/// How long a TCP connect + TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 pings find a dead collector (or a dead NAT mapping) long before
/// TCP would: a ping unanswered for `KEEPALIVE_TIMEOUT` ends the session.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A validated collector URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorUrl {
    url: String,
    host: String,
    port: u16,
}

impl CollectorUrl {
    /// Accepts `https://HOST[:PORT][/]`; the port defaults to 443.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::CollectorUrl {
            url: input.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = input.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some(_) => return Err(bad("the scheme must be https")),
            None => return Err(bad("expected https://HOST:PORT")),
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("must not have a path or query"));
        }
        let port = uri.port_u16().unwrap_or(443);
        // http::Uri keeps the brackets of an IPv6 literal; TLS names do not.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            url: format!("https://{}:{port}", uri.host().unwrap_or(&host)),
            host,
            port,
        })
    }

    /// `https://ADDR:PORT` for one resolved address.
    pub fn from_addr(addr: std::net::SocketAddr) -> Self {
        Self {
            url: format!("https://{addr}"),
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// The normalised URL, `https://HOST:PORT`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Host name or IP literal (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for CollectorUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Client TLS material for a tonic channel.
pub struct Tls<'a> {
    /// The collector CA (PEM): the only trusted root.
    pub ca_pem: &'a str,
    /// The name the collector's certificate must carry.
    pub server_name: &'a str,
    /// Client certificate chain and key (PEM), for mutual TLS.
    pub client: Option<(&'a str, &'a str)>,
}

/// A tonic endpoint for `url`, verified against `tls`.
pub fn endpoint(url: &CollectorUrl, tls: &Tls<'_>) -> Result<Endpoint> {
    // `connect_timeout` bounds the TCP connect only: without its own
    // timeout a peer that accepts and then stays silent (a hung collector,
    // a firewall that lost the flow) would hold the handshake forever, and
    // HTTP/2 keepalive starts only after it.
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(tls.ca_pem))
        .domain_name(tls.server_name)
        .timeout(CONNECT_TIMEOUT);
    if let Some((chain, key)) = tls.client {
        config = config.identity(Identity::from_pem(chain, key));
    }
    let transport = |source| Error::Transport {
        url: url.to_string(),
        source,
    };
    Endpoint::from_shared(url.as_str().to_owned())
        .map_err(transport)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tls_config(config)
        .map_err(transport)
}

/// A channel to `url`, connected and verified against `tls`.
pub async fn connect(url: &CollectorUrl, tls: &Tls<'_>) -> Result<Channel> {
    endpoint(url, tls)?
        .connect()
        .await
        .map_err(|source| Error::Transport {
            url: url.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_port() {
        let u = CollectorUrl::parse("https://collector.example.com:4443").expect("valid");
        assert_eq!((u.host(), u.port()), ("collector.example.com", 4443));
        assert_eq!(u.as_str(), "https://collector.example.com:4443");
        let u = CollectorUrl::parse("https://127.0.0.1/").expect("valid");
        assert_eq!((u.host(), u.port()), ("127.0.0.1", 443));
        let u = CollectorUrl::parse("https://[::1]:4443").expect("valid");
        assert_eq!((u.host(), u.as_str()), ("::1", "https://[::1]:4443"));
        let addr = "[::1]:4443".parse().expect("addr");
        assert_eq!(CollectorUrl::from_addr(addr), u);
        let addr = "10.0.0.1:7443".parse().expect("addr");
        assert_eq!(
            CollectorUrl::from_addr(addr),
            CollectorUrl::parse("https://10.0.0.1:7443").expect("valid")
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in ["http://c:1", "c:4443", "https://c:1/x", "", "https://"] {
            assert!(CollectorUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
