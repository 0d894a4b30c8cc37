//! The fleet as the dashboard shows it: every host of the caller's scope
//! with its worst state and open tickets, from three reads (agents, grouped
//! check states, grouped open tickets) whatever the fleet's size. Shared by
//! the fleet page and the NOC wall.

use std::collections::{BTreeSet, HashMap};

use crate::Result;
use crate::api::AppState;
use crate::domain::{Agent, Millis, Scope, Tenant, rfc3339};

/// A host's state on the dashboard, in the order problems are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostState {
    Crit,
    Warn,
    Unknown,
    /// No report within its overdue time (its checks say nothing worse).
    Overdue,
    Ok,
}

impl HostState {
    pub const ALL: [HostState; 5] = [
        HostState::Crit,
        HostState::Warn,
        HostState::Unknown,
        HostState::Overdue,
        HostState::Ok,
    ];

    /// The CSS class and query value.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Crit => "crit",
            HostState::Warn => "warn",
            HostState::Unknown => "unknown",
            HostState::Overdue => "overdue",
            HostState::Ok => "ok",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            HostState::Crit => "CRIT",
            HostState::Warn => "WARN",
            HostState::Unknown => "UNKNOWN",
            HostState::Overdue => "OVERDUE",
            HostState::Ok => "OK",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// From a stored check state (`ok`, `warn`, `crit`, `unknown`).
    fn of_check(state: &str) -> Self {
        match state {
            "crit" => HostState::Crit,
            "warn" => HostState::Warn,
            "unknown" => HostState::Unknown,
            _ => HostState::Ok,
        }
    }
}

/// One check kind of a host in one state, with how many items.
#[derive(Debug, Clone)]
pub struct CheckCount {
    pub check: String,
    pub state: HostState,
    pub count: i64,
}

/// One host's line.
#[derive(Debug, Clone)]
pub struct HostRow {
    pub id: String,
    pub tenant_id: String,
    pub site: String,
    pub hostname: String,
    pub role: String,
    pub os: String,
    pub agent_version: String,
    /// `enrolled`, `online`, `disconnected` or `offline`.
    pub status: String,
    pub state: HostState,
    pub overdue: bool,
    pub last_seen: String,
    pub last_seen_at: String,
    pub open_tickets: i64,
    /// Of which past an SLA due time.
    pub breached: i64,
    /// Every check kind it reports, with counts per state.
    pub checks: Vec<CheckCount>,
}

impl HostRow {
    /// Its check kinds that are not OK, worst first (`disk ×2`).
    pub fn problems(&self) -> Vec<String> {
        let mut bad: Vec<&CheckCount> = self
            .checks
            .iter()
            .filter(|c| c.state != HostState::Ok)
            .collect();
        bad.sort_by(|a, b| a.state.cmp(&b.state).then(a.check.cmp(&b.check)));
        bad.iter()
            .map(|c| match c.count {
                1 => format!("{} {}", c.check, c.state.label()),
                n => format!("{} ×{n} {}", c.check, c.state.label()),
            })
            .collect()
    }

    /// Overdue with checks worse than that (shown as a second badge).
    pub fn also_overdue(&self) -> bool {
        self.overdue && self.state != HostState::Overdue
    }

    fn has_check(&self, check: &str, state: Option<HostState>) -> bool {
        self.checks.iter().any(|c| {
            c.check == check
                && match state {
                    None | Some(HostState::Overdue) => true,
                    Some(s) => c.state == s,
                }
        })
    }
}

/// Hosts per state.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub total: usize,
    by: [usize; 5],
}

impl Counts {
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a HostRow>) -> Self {
        let mut c = Counts::default();
        for r in rows {
            c.add(r.state);
        }
        c
    }

    fn add(&mut self, s: HostState) {
        self.total += 1;
        self.by[s as usize] += 1;
    }

    pub fn get(&self, s: HostState) -> usize {
        self.by[s as usize]
    }

    /// (state, count) for every state, problems first.
    pub fn each(&self) -> Vec<(HostState, usize)> {
        HostState::ALL.iter().map(|&s| (s, self.get(s))).collect()
    }

    /// "1 CRIT · 3 OK": the states that have hosts.
    pub fn summary(&self) -> String {
        self.each()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {}", s.label()))
            .collect::<Vec<_>>()
            .join(" · ")
    }

    fn worst(&self) -> HostState {
        HostState::ALL
            .into_iter()
            .find(|&s| self.get(s) > 0)
            .unwrap_or(HostState::Ok)
    }
}

/// Every host in a scope, and the totals the NOC wall shows.
pub struct Fleet {
    pub tenants: Vec<Tenant>,
    pub hosts: Vec<HostRow>,
    /// Open tickets of the scope (site and group tickets included).
    pub open_tickets: i64,
    /// Open tickets past an SLA due time.
    pub breached: i64,
}

/// Reads the fleet of `scope` (revoked agents left out: nothing monitors them).
pub async fn load(s: &AppState, scope: &Scope, now: Millis) -> Result<Fleet> {
    let (tenants, agents, rows) = tokio::try_join!(
        s.svc.store().list_tenants(scope),
        s.svc.list_agents(scope),
        s.svc.store().fleet_rows(scope),
    )?;
    let mut checks: HashMap<&str, Vec<CheckCount>> = HashMap::new();
    for c in &rows.checks {
        checks.entry(&c.agent_id).or_default().push(CheckCount {
            check: c.check.clone(),
            state: HostState::of_check(&c.state),
            count: c.count,
        });
    }
    let tickets: HashMap<&str, (i64, i64)> = rows
        .tickets
        .iter()
        .map(|t| (t.agent_id.as_str(), (t.open, t.breached)))
        .collect();
    let hosts = agents
        .into_iter()
        .filter(|a| !a.revoked)
        .map(|a| {
            let checks = checks.remove(a.id.as_str()).unwrap_or_default();
            let (open, breached) = tickets.get(a.id.as_str()).copied().unwrap_or((0, 0));
            host_row(a, checks, open, breached, now)
        })
        .collect();
    Ok(Fleet {
        tenants,
        hosts,
        open_tickets: rows.tickets.iter().map(|t| t.open).sum(),
        breached: rows.tickets.iter().map(|t| t.breached).sum(),
    })
}

fn host_row(a: Agent, checks: Vec<CheckCount>, open: i64, breached: i64, now: Millis) -> HostRow {
    let worst = checks
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| c.state)
        .min()
        .unwrap_or(HostState::Ok);
    let state = if worst == HostState::Ok && a.overdue {
        HostState::Overdue
    } else {
        worst
    };
    HostRow {
        os: format!("{} {}", a.os_name, a.os_version).trim().to_string(),
        last_seen: a
            .last_seen_at
            .map_or_else(|| "never".into(), |t| ago(now, t)),
        last_seen_at: a.last_seen_at.map(rfc3339::format).unwrap_or_default(),
        id: a.id,
        tenant_id: a.tenant_id,
        site: a.site,
        hostname: a.hostname,
        role: a.role,
        agent_version: a.agent_version,
        status: a.status,
        state,
        overdue: a.overdue,
        open_tickets: open,
        breached,
        checks,
    }
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago" (or "in …" for the future).
pub fn ago(now: Millis, at: Millis) -> String {
    let secs = (now - at) / 1000;
    let text = span(secs.abs());
    if secs < 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A length of time in its largest whole unit: "12 s", "5 min", "3 h", "2 d".
pub fn span(secs: i64) -> String {
    match secs {
        ..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// What the fleet page's form filters by (empty: no filter).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub check: String,
    #[serde(default)]
    pub state: String,
    /// Part of a hostname, any case.
    #[serde(default)]
    pub q: String,
}

impl Filter {
    /// The state asked for; an unknown value is an error naming the field.
    pub fn state(&self) -> Result<Option<HostState>> {
        if self.state.is_empty() {
            return Ok(None);
        }
        HostState::parse(&self.state).map(Some).ok_or_else(|| {
            crate::Error::InvalidArgument(format!(
                "state must be crit, warn, unknown, overdue or ok, not {:?}",
                self.state
            ))
        })
    }

    /// Whether `h` passes (`state` already parsed). With a check, the
    /// state applies to that check (`disk` + `crit`: hosts whose disk is
    /// CRIT); alone, to the host.
    pub fn keeps(&self, h: &HostRow, state: Option<HostState>) -> bool {
        let q = self.q.trim().to_lowercase();
        (self.tenant.is_empty() || h.tenant_id == self.tenant)
            && (self.site.is_empty() || h.site == self.site)
            && (self.role.is_empty() || h.role == self.role)
            && (q.is_empty() || h.hostname.to_lowercase().contains(&q))
            && if self.check.is_empty() {
                state.is_none_or(|s| h.state == s)
            } else {
                h.has_check(&self.check, state) && (state != Some(HostState::Overdue) || h.overdue)
            }
    }
}

/// Hosts of one site, problems first.
pub struct SiteGroup {
    pub name: String,
    pub counts: Counts,
    pub hosts: Vec<HostRow>,
}

/// Sites of one tenant, problems first.
pub struct TenantGroup {
    pub id: String,
    pub name: String,
    pub counts: Counts,
    pub sites: Vec<SiteGroup>,
}

/// Tenants → sites → hosts, each level sorted worst first, then by name.
pub fn group(tenants: &[Tenant], hosts: Vec<HostRow>) -> Vec<TenantGroup> {
    let names: HashMap<&str, &str> = tenants
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    let mut by_tenant: HashMap<String, HashMap<String, Vec<HostRow>>> = HashMap::new();
    for h in hosts {
        by_tenant
            .entry(h.tenant_id.clone())
            .or_default()
            .entry(h.site.clone())
            .or_default()
            .push(h);
    }
    let mut out: Vec<TenantGroup> = by_tenant
        .into_iter()
        .map(|(id, sites)| {
            let mut sites: Vec<SiteGroup> = sites
                .into_iter()
                .map(|(name, mut hosts)| {
                    hosts.sort_by(|a, b| {
                        (a.state, &a.hostname, &a.id).cmp(&(b.state, &b.hostname, &b.id))
                    });
                    SiteGroup {
                        counts: Counts::of(&hosts),
                        name,
                        hosts,
                    }
                })
                .collect();
            sites.sort_by(|a, b| (a.counts.worst(), &a.name).cmp(&(b.counts.worst(), &b.name)));
            let counts = Counts::of(sites.iter().flat_map(|s| &s.hosts));
            TenantGroup {
                name: names
                    .get(id.as_str())
                    .map_or_else(|| id.clone(), |n| (*n).to_string()),
                id,
                counts,
                sites,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.counts.worst(), &a.name).cmp(&(b.counts.worst(), &b.name)));
    out
}

/// Distinct values of `f` over `hosts`, sorted.
pub fn distinct<'a>(hosts: &'a [HostRow], f: impl Fn(&'a HostRow) -> Vec<&'a str>) -> Vec<String> {
    let set: BTreeSet<&str> = hosts.iter().flat_map(f).collect();
    set.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, tenant: &str, site: &str, state: HostState) -> HostRow {
        HostRow {
            id: host.into(),
            tenant_id: tenant.into(),
            site: site.into(),
            hostname: host.into(),
            role: "server".into(),
            os: String::new(),
            agent_version: String::new(),
            status: "online".into(),
            state,
            overdue: state == HostState::Overdue,
            last_seen: String::new(),
            last_seen_at: String::new(),
            open_tickets: 0,
            breached: 0,
            checks: vec![CheckCount {
                check: "disk".into(),
                state: if state == HostState::Overdue {
                    HostState::Ok
                } else {
                    state
                },
                count: 1,
            }],
        }
    }

    #[test]
    fn problems_come_first_at_every_level() {
        let tenants = vec![];
        let g = group(
            &tenants,
            vec![
                row("a", "t1", "s1", HostState::Ok),
                row("b", "t1", "s2", HostState::Overdue),
                row("c", "t1", "s2", HostState::Warn),
                row("d", "t2", "s1", HostState::Crit),
                row("e", "t1", "s1", HostState::Crit),
            ],
        );
        assert_eq!(g[0].id, "t1", "t1 and t2 both have a CRIT host: by name");
        let t1 = &g[0];
        assert_eq!(t1.sites[0].name, "s1", "s1 has a CRIT host");
        let s1: Vec<&str> = t1.sites[0].hosts.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(s1, ["e", "a"]);
        let s2: Vec<&str> = t1.sites[1].hosts.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(s2, ["c", "b"], "WARN before overdue");
        assert_eq!(t1.counts.get(HostState::Crit), 1);
        assert_eq!(t1.counts.total, 4);
    }

    #[test]
    fn a_check_filter_applies_the_state_to_that_check() {
        let crit = row("x", "t", "s", HostState::Crit);
        let f = |check: &str, state: &str| Filter {
            check: check.into(),
            state: state.into(),
            ..Filter::default()
        };
        let keeps = |f: Filter| {
            let s = f.state().expect("state");
            f.keeps(&crit, s)
        };
        assert!(keeps(f("disk", "crit")));
        assert!(!keeps(f("disk", "ok")));
        assert!(!keeps(f("cpu", "")));
        assert!(keeps(f("", "crit")));
        assert!(!keeps(f("", "warn")));
        assert!(f("", "bad").state().is_err());
    }

    #[test]
    fn ago_reads_like_a_person() {
        assert_eq!(ago(100_000, 88_000), "12 s ago");
        assert_eq!(ago(1_000_000, 700_000), "5 min ago");
        assert_eq!(ago(0, 7_200_000), "in 2 h");
    }
}
