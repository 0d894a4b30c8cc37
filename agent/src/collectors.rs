//! Several collectors: the addresses an agent may report to (`[collector]
//! urls`, `url`, or what `enroll` recorded) and the order it tries them in.
//!
//! Every URL's host is resolved to all of its addresses at the start of a
//! round, and each address is a target of its own: a name with three A
//! records is three replicas. A round tries every target once, in a random
//! order (so a fleet spreads over the replicas, and the agents of a replica
//! that dies spread over the survivors instead of all landing on the next
//! one), with the address that failed last put at the end. Within a round
//! the next target is tried at once: a dead replica costs one failed
//! connect, not a backoff. The reconnect backoff (full jitter) runs between
//! rounds only. A session that worked and was then lost starts a new round
//! at once when there is somewhere else to go.
//!
//! One TLS server name serves every address (`server_name`): each
//! collector's certificate must carry it (`[grpc] server_names`).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;

use tracing::warn;

use crate::endpoint::CollectorUrl;
use crate::error::{Error, Result, chain};

/// The configured collector URLs, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collectors {
    urls: Vec<CollectorUrl>,
}

/// One address to connect to: the URL it came from and one of the
/// addresses its host resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: CollectorUrl,
    pub addr: SocketAddr,
}

impl Target {
    /// The URL to dial: the resolved address itself, so the connection goes
    /// to this target and not to whatever the name resolves to first.
    pub fn dial(&self) -> CollectorUrl {
        CollectorUrl::from_addr(self.addr)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dial = self.dial();
        if dial == self.url {
            write!(f, "{}", self.url)
        } else {
            write!(f, "{} ({})", self.url, self.addr)
        }
    }
}

impl Collectors {
    /// Parses every URL; at least one.
    pub fn parse<S: AsRef<str>>(urls: &[S]) -> Result<Self> {
        if urls.is_empty() {
            return Err(Error::CollectorUrl {
                url: String::new(),
                reason: "no collector address".to_owned(),
            });
        }
        let urls = urls
            .iter()
            .map(|u| CollectorUrl::parse(u.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { urls })
    }

    pub fn urls(&self) -> &[CollectorUrl] {
        &self.urls
    }

    pub fn first(&self) -> &CollectorUrl {
        &self.urls[0]
    }

    /// Every address of every URL, in URL order, each once. A name that does
    /// not resolve is logged and left out of this round.
    pub async fn resolve(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        for url in &self.urls {
            match tokio::net::lookup_host((url.host(), url.port())).await {
                Ok(addrs) => {
                    for addr in addrs {
                        if !targets.iter().any(|t| t.addr == addr) {
                            targets.push(Target {
                                url: url.clone(),
                                addr,
                            });
                        }
                    }
                }
                Err(source) => {
                    let e = Error::Connect {
                        url: url.to_string(),
                        source,
                    };
                    warn!(error = %chain(&e), "cannot resolve the collector's name");
                }
            }
        }
        targets
    }

    /// A new round: every address in a random order, `avoid` (the address
    /// that failed last) at the end.
    pub async fn round(&self, avoid: Option<SocketAddr>) -> Vec<Target> {
        let targets = self.resolve().await;
        let avoid = avoid.and_then(|a| targets.iter().position(|t| t.addr == a));
        let order = round_order(targets.len(), avoid, draw);
        order.into_iter().map(|i| targets[i].clone()).collect()
    }

    /// Runs `attempt` on each address of a round in turn until one answers;
    /// an error that another collector would not answer differently (a
    /// refused token, a CA mismatch) ends it at once. For enrollment and
    /// renewal, which are one call each.
    pub async fn first_answer<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut last = None;
        for target in self.round(None).await {
            let shown = target.to_string();
            match attempt(target).await {
                Ok(v) => return Ok(v),
                Err(e) if e.try_elsewhere() => {
                    warn!(error = %chain(&e), collector = %shown, "collector unreachable; trying the next address");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Connect {
            url: self
                .urls
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address resolved for any collector url",
            ),
        }))
    }
}

impl fmt::Display for Collectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, url) in self.urls.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{url}")?;
        }
        Ok(())
    }
}

/// A uniform draw in `0..n` (`n > 0`).
fn draw(n: usize) -> usize {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = (crate::backoff::random_unit() * n as f64) as usize;
    i.min(n.saturating_sub(1))
}

/// The order of one round over `n` targets: a random permutation
/// (Fisher–Yates with `draw(k)` uniform in `0..k`), then `avoid` moved to
/// the end.
pub fn round_order(
    n: usize,
    avoid: Option<usize>,
    mut draw: impl FnMut(usize) -> usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, draw(i + 1).min(i));
    }
    if let Some(a) = avoid.filter(|a| *a < n) {
        order.retain(|i| *i != a);
        order.push(a);
    }
    order
}

/// What to do after an attempt on one target failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Try the next target now.
    Now,
    /// Every target of the round failed: back off, then a new round.
    Backoff,
}

/// The session's walk over the targets: rounds of every address, the next
/// one at once after a failure, backoff after a whole round failed.
#[derive(Debug, Default)]
pub struct Rotation {
    pending: VecDeque<Target>,
    round_len: usize,
    last_failed: Option<SocketAddr>,
}

impl Rotation {
    /// The address that failed last, for [`Collectors::round`]'s `avoid`.
    pub fn last_failed(&self) -> Option<SocketAddr> {
        self.last_failed
    }

    /// Whether a new round must be started before [`Rotation::take_next`].
    pub fn needs_round(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts a round over `targets` (already in the order to try).
    pub fn start_round(&mut self, targets: Vec<Target>) {
        self.round_len = targets.len();
        self.pending = targets.into();
    }

    /// The target to try now, taken off the round.
    pub fn take_next(&mut self) -> Option<Target> {
        self.pending.pop_front()
    }

    /// Tries `target` again first (a session closed for a renewed
    /// certificate reconnects where it was).
    pub fn again(&mut self, target: Target) {
        self.pending.push_front(target);
    }

    /// The attempt on `target` failed; `worked`: its session had been
    /// acknowledging reports before it was lost. A lost working session
    /// starts a new round at once when there is another address to go to
    /// (the rest of the old round may be stale); otherwise the next target
    /// of the round, or backoff when the round is over.
    pub fn failed(&mut self, target: &Target, worked: bool) -> Step {
        self.last_failed = Some(target.addr);
        if worked {
            self.pending.clear();
            return if self.round_len > 1 {
                Step::Now
            } else {
                Step::Backoff
            };
        }
        if self.pending.is_empty() {
            Step::Backoff
        } else {
            Step::Now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16) -> Target {
        let addr: SocketAddr = format!("10.0.0.1:{port}").parse().expect("addr");
        Target {
            url: CollectorUrl::from_addr(addr),
            addr,
        }
    }

    fn ports(targets: &[Target]) -> Vec<u16> {
        targets.iter().map(|t| t.addr.port()).collect()
    }

    #[test]
    fn a_round_is_a_permutation_with_the_failed_one_last() {
        for n in 0..6 {
            for avoid in [None, Some(0), Some(n / 2)] {
                let mut seed = 7usize;
                let order = round_order(n, avoid, |k| {
                    seed = seed.wrapping_mul(31).wrapping_add(17);
                    seed % k
                });
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{order:?}");
                if let Some(a) = avoid.filter(|a| *a < n) {
                    assert_eq!(order.last(), Some(&a), "{order:?}");
                }
            }
        }
        // draw always 0: Fisher–Yates swaps each last element to the front.
        assert_eq!(round_order(3, None, |_| 0), [1, 2, 0]);
        assert_eq!(round_order(3, Some(1), |_| 0), [2, 0, 1]);
    }

    #[test]
    fn every_address_starts_a_round_about_equally_often() {
        let mut firsts = [0u32; 3];
        for _ in 0..3_000 {
            firsts[round_order(3, None, draw)[0]] += 1;
        }
        assert!(
            firsts.iter().all(|n| (800..=1200).contains(n)),
            "{firsts:?}"
        );
        // With the failed one last, the others share the first place.
        let mut firsts = [0u32; 3];
        for _ in 0..3_000 {
            firsts[round_order(3, Some(0), draw)[0]] += 1;
        }
        assert_eq!(firsts[0], 0);
        assert!(
            firsts[1..].iter().all(|n| (1300..=1700).contains(n)),
            "{firsts:?}"
        );
    }

    #[test]
    fn failures_walk_the_round_and_back_off_after_the_last() {
        let mut r = Rotation::default();
        assert!(r.needs_round());
        r.start_round(vec![target(1), target(2), target(3)]);
        let mut tried = Vec::new();
        let mut steps = Vec::new();
        while let Some(t) = r.take_next() {
            tried.push(t.addr.port());
            steps.push(r.failed(&t, false));
        }
        assert_eq!(tried, [1, 2, 3]);
        assert_eq!(steps, [Step::Now, Step::Now, Step::Backoff]);
        assert!(r.needs_round());
        assert_eq!(r.last_failed().map(|a| a.port()), Some(3));
    }

    #[test]
    fn a_lost_working_session_moves_on_at_once_unless_alone() {
        let mut r = Rotation::default();
        r.start_round(vec![target(1), target(2), target(3)]);
        let t = r.take_next().expect("target");
        assert_eq!(r.failed(&t, true), Step::Now);
        assert!(r.needs_round(), "a new round, not the rest of the old one");
        assert_eq!(r.last_failed().map(|a| a.port()), Some(1));

        let mut alone = Rotation::default();
        alone.start_round(vec![target(1)]);
        let t = alone.take_next().expect("target");
        assert_eq!(alone.failed(&t, true), Step::Backoff);
        assert_eq!(alone.failed(&t, false), Step::Backoff);
    }

    #[test]
    fn a_renewed_session_reconnects_to_the_same_target() {
        let mut r = Rotation::default();
        r.start_round(vec![target(1), target(2)]);
        let t = r.take_next().expect("target");
        r.again(t);
        assert_eq!(
            ports(&r.pending.iter().cloned().collect::<Vec<_>>()),
            [1, 2]
        );
    }

    #[tokio::test]
    async fn literal_addresses_resolve_to_themselves_once_each() {
        let c = Collectors::parse(&[
            "https://127.0.0.1:7443",
            "https://[::1]:7443",
            "https://127.0.0.1:7443/",
        ])
        .expect("valid");
        let targets = c.resolve().await;
        let addrs: Vec<String> = targets.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:7443", "[::1]:7443"]);
        assert_eq!(targets[0].to_string(), "https://127.0.0.1:7443");
        let round = c.round(Some("127.0.0.1:7443".parse().expect("addr"))).await;
        assert_eq!(round.last().map(|t| t.addr.port()), Some(7443));
        assert_eq!(round.last().map(|t| t.addr.is_ipv4()), Some(true));
    }

    #[tokio::test]
    async fn a_name_is_tried_address_by_address() {
        // `localhost` resolves to 127.0.0.1 (and ::1 where configured).
        let c = Collectors::parse(&["https://localhost:7443"]).expect("valid");
        let targets = c.resolve().await;
        assert!(!targets.is_empty());
        for t in &targets {
            assert!(t.addr.ip().is_loopback(), "{t}");
            assert_eq!(
                t.to_string(),
                format!("https://localhost:7443 ({})", t.addr)
            );
            assert_eq!(t.dial().port(), 7443);
        }
    }

    #[tokio::test]
    async fn first_answer_skips_unreachable_addresses_only() {
        let c = Collectors::parse(&["https://127.0.0.1:1", "https://127.0.0.2:1"]).expect("valid");
        let mut tried = Vec::new();
        let answer = c
            .first_answer(|t| {
                tried.push(t.addr);
                let unreachable = tried.len() == 1;
                async move {
                    if unreachable {
                        Err(Error::Connect {
                            url: t.to_string(),
                            source: std::io::ErrorKind::ConnectionRefused.into(),
                        })
                    } else {
                        Ok(t.addr)
                    }
                }
            })
            .await
            .expect("the second answers");
        assert_eq!(tried.len(), 2);
        assert_eq!(answer, tried[1]);

        let mut calls = 0;
        let refused = c
            .first_answer(|_| {
                calls += 1;
                async {
                    Err::<(), _>(Error::Rejected {
                        call: "enrollment",
                        code: tonic::Code::PermissionDenied,
                        message: "bad token".to_owned(),
                    })
                }
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(calls, 1, "a refusal is not retried elsewhere");

        assert!(Collectors::parse::<&str>(&[]).is_err());
        assert!(Collectors::parse(&["https://a:1", "http://b:1"]).is_err());
    }
}
