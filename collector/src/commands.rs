//! Operator commands run from the CLI against the collector's store
//! (SQLite in WAL mode: safe while `serve` is running).

use std::time::Duration;

use serde_json::json;

use crate::domain::{ApiCaller, NewEnrollmentToken, Role, Scope, TicketState, now_millis, rfc3339};
use crate::serve::{ensure_default_tenant, open_store};
use crate::tickets::Service;
use crate::{Config, Error, Result, secrets};

/// The store, with the config's default tenant in it.
pub(crate) async fn store(cfg: &Config) -> Result<Service> {
    let s = open_store(cfg).await?;
    ensure_default_tenant(s.store().as_ref(), cfg).await?;
    Ok(s)
}

/// A tenant's id by name; an unknown name says where to look.
pub(crate) async fn tenant_id(store: &Service, name: &str) -> Result<String> {
    store
        .store()
        .tenant_by_name(name)
        .await?
        .map(|t| t.id)
        .ok_or_else(|| Error::NotFound(format!("tenant {name:?} (see `tenant list`)")))
}

/// The default for `--by`: the login name running the command.
pub fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".to_string())
}

/// The CLI acting as `cli:<actor>`: an admin on every tenant, recorded as
/// such in timelines and the audit log.
pub(crate) fn operator(actor: &str) -> ApiCaller {
    ApiCaller {
        scope: Scope::All,
        name: format!("cli:{actor}"),
        role: Role::MspAdmin,
        source: "cli".into(),
    }
}

/// `tenant add NAME [--time-zone TZ]`
pub async fn tenant_add(cfg: &Config, name: &str, time_zone: Option<&str>) -> Result<()> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(Error::InvalidArgument(
            "tenant name must be 1..128 characters".into(),
        ));
    }
    // Checked before anything is created.
    if let Some(tz) = time_zone {
        crate::maintenance::time_zone(tz).map_err(Error::InvalidArgument)?;
    }
    let s = store(cfg).await?;
    let t = s.store().create_tenant(name).await?;
    let tz = match time_zone {
        Some(tz) => crate::maintenance::cli::set_time_zone(&s, name, tz, &whoami()).await?,
        None => t.time_zone,
    };
    println!("created tenant {:?} ({}), time zone {tz}", t.name, t.id);
    Ok(())
}

/// `tenant list`
pub async fn tenant_list(cfg: &Config, as_json: bool) -> Result<()> {
    let s = store(cfg).await?;
    let tenants = s.store().list_tenants(&Scope::All).await?;
    if as_json {
        println!("{}", json!(tenants));
    } else {
        println!("{:<36}  {:<24}  {:<20}  CREATED", "ID", "NAME", "TIME ZONE");
        for t in tenants {
            println!(
                "{:<36}  {:<24}  {:<20}  {}",
                t.id,
                t.name,
                t.time_zone,
                rfc3339::format(t.created_at)
            );
        }
    }
    Ok(())
}

/// Options of `token create`.
pub struct TokenOptions<'a> {
    pub tenant: &'a str,
    pub site: &'a str,
    pub expires_in: Duration,
    pub max_uses: u32,
    pub role: &'a str,
    pub collector_url: Option<&'a str>,
    pub json: bool,
}

/// `token create`: prints the token (once) and the CA fingerprint to pin.
pub async fn token_create(cfg: &Config, o: TokenOptions<'_>) -> Result<()> {
    if o.max_uses == 0 {
        return Err(Error::InvalidArgument(
            "--max-uses must be at least 1".into(),
        ));
    }
    if !crate::tickets::policy::ROLES.contains(&o.role) {
        return Err(Error::InvalidArgument(format!(
            "--role must be server or workstation, not {:?}",
            o.role
        )));
    }
    if o.site.len() > 128 {
        return Err(Error::InvalidArgument("--site is longer than 128".into()));
    }
    let s = store(cfg).await?;
    let tenant_id = tenant_id(&s, o.tenant).await?;
    let ca = crate::serve::open_ca(cfg, s.store().as_ref()).await?;
    let token = secrets::generate(secrets::TOKEN_PREFIX);
    let expires_at = now_millis() + i64::try_from(o.expires_in.as_millis()).unwrap_or(i64::MAX / 2);
    let id = uuid::Uuid::new_v4().to_string();
    s.store()
        .create_enrollment_token(&NewEnrollmentToken {
            id: id.clone(),
            tenant_id,
            site: o.site.to_string(),
            token_hash: secrets::hash(&token),
            expires_at,
            max_uses: o.max_uses,
            role: o.role.to_string(),
        })
        .await?;
    let url = o
        .collector_url
        .map(str::to_string)
        .unwrap_or_else(|| crate::install::oneliner::default_agent_url(cfg));
    let fingerprint = ca.fingerprint();
    let line = crate::install::oneliner::Enrollment {
        url: &url,
        fingerprint: &fingerprint,
        token: &token,
    };
    if o.json {
        println!(
            "{}",
            json!({
                "id": id,
                "token": token,
                "tenant": o.tenant,
                "site": o.site,
                "expires_at": rfc3339::format(expires_at),
                "max_uses": o.max_uses,
                "role": o.role,
                "ca_fingerprint": fingerprint,
                "collector_url": url,
                "install_sh": line.sh(),
                "install_ps1": line.powershell(),
            })
        );
    } else {
        println!(
            "enrollment token for tenant {:?}{} — expires {}, {} use(s); shown only once:\n\n  {token}\n\ncollector CA fingerprint (agents pin it):\n\n  {fingerprint}\n\ninstall, enroll and start the agent with one line — Linux or macOS (as a sudoer):\n\n  {sh}\n\nWindows (elevated PowerShell):\n\n  {ps}\n\nor, where forewarn-agent is installed already:\n\n  forewarn-agent enroll --collector {url} --token {token} --ca-fingerprint {fingerprint}\n",
            o.tenant,
            if o.site.is_empty() {
                String::new()
            } else {
                format!(", site {:?}", o.site)
            },
            rfc3339::format(expires_at),
            o.max_uses,
            sh = line.sh(),
            ps = line.powershell(),
        );
    }
    Ok(())
}

/// `tickets list`
pub async fn tickets_list(
    cfg: &Config,
    state: Option<TicketState>,
    tenant: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let s = store(cfg).await?;
    let scope = match tenant {
        Some(t) => Scope::Tenant(tenant_id(&s, t).await?),
        None => Scope::All,
    };
    let tickets = s.store().list_tickets(&scope, state).await?;
    if as_json {
        println!("{}", json!(tickets));
        return Ok(());
    }
    println!(
        "{:>6}  {:<8}  {:<3} {:<2}  {:<7}  {:<20}  {:<25}  SUMMARY",
        "ID", "STATE", "PRI", "T", "SEV", "HOST", "OPENED"
    );
    for t in tickets {
        println!(
            "{:>6}  {:<8}  {:<3} L{}  {:<7}  {:<20}  {:<25}  {}{}{}",
            t.id,
            t.state.as_str(),
            t.priority,
            t.tier,
            t.severity.as_str(),
            t.host,
            rfc3339::format(t.opened_at),
            t.summary,
            if t.flapping { " [flapping]" } else { "" },
            if t.acknowledged_at.is_some() {
                " [ack]"
            } else {
                ""
            },
        );
    }
    Ok(())
}

/// `ca fingerprint`
pub async fn ca_fingerprint(cfg: &Config) -> Result<()> {
    let s = store(cfg).await?;
    let ca = crate::serve::open_ca(cfg, s.store().as_ref()).await?;
    println!("{}", ca.fingerprint());
    Ok(())
}

/// `ca kek-create PATH`: a new key-encryption key for `[pki] kek_file`.
pub fn kek_create(path: &std::path::Path) -> Result<()> {
    crate::pki::Kek::create_file(path)?;
    eprintln!(
        "wrote a new key-encryption key to {} (mode 0600): copy it to every replica and set \
         [pki] kek_file = {:?}; without it the CA key in the database cannot be opened",
        path.display(),
        path.display().to_string()
    );
    Ok(())
}

/// `tickets ack|assign|escalate|note|resolve`: as operator `actor`.
pub async fn ticket_action(
    cfg: &Config,
    id: i64,
    action: crate::domain::TicketAction,
    actor: &str,
) -> Result<()> {
    let s = store(cfg).await?;
    let caller = operator(actor);
    let out = s.ticket_action(&caller, id, &action, now_millis()).await?;
    let t = &out.ticket.ticket;
    println!(
        "ticket {} {} {} L{}{}: {}",
        t.id,
        t.state.as_str(),
        t.priority,
        t.tier,
        t.assignee
            .as_deref()
            .map(|a| format!(" assigned to {a}"))
            .unwrap_or_default(),
        t.summary
    );
    if let Some(m) = out.still_failing {
        println!("note: the problem is still present ({m}); the engine will reopen the ticket");
    }
    Ok(())
}

/// `tickets show ID`: the ticket and its timeline.
pub async fn ticket_show(cfg: &Config, id: i64, as_json: bool) -> Result<()> {
    let s = store(cfg).await?;
    let t = s
        .store()
        .get_ticket(&Scope::All, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
    if as_json {
        println!("{}", json!(t));
        return Ok(());
    }
    let k = &t.ticket;
    println!(
        "ticket {} — {} {} L{} {}{}\n{}\n",
        k.id,
        k.state.as_str(),
        k.priority,
        k.tier,
        k.severity.as_str(),
        if k.flapping { " (flapping)" } else { "" },
        k.summary
    );
    for e in &t.events {
        println!(
            "{}  {:<12} {:<16} {}",
            rfc3339::format(e.at),
            e.kind,
            e.actor,
            e.detail
        );
    }
    Ok(())
}

/// `kpis`: per tenant, tickets opened in the last `days` days.
pub async fn kpis(cfg: &Config, days: u32, tenant: Option<&str>, as_json: bool) -> Result<()> {
    let s = store(cfg).await?;
    let scope = match tenant {
        Some(t) => Scope::Tenant(tenant_id(&s, t).await?),
        None => Scope::All,
    };
    let to = now_millis();
    let from = to - i64::from(days) * 24 * 3600 * 1000;
    let kpis = s.kpis(&scope, from, to).await?;
    if as_json {
        println!("{}", json!(kpis));
        return Ok(());
    }
    let stat = |d: &Option<crate::domain::DurationStats>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.1}s / {:.1}s", d.mean_secs, d.median_secs)
        })
    };
    println!(
        "{:<20} {:>6} {:>6} {:>6} {:>6} {:>6}  {:<18} {:<18} {:<18}",
        "TENANT",
        "OPENED",
        "AUTO",
        "HAND",
        "ESC",
        "SLA!",
        "DETECT mean/med",
        "ACK mean/med",
        "RESOLVE mean/med"
    );
    for k in kpis {
        println!(
            "{:<20} {:>6} {:>6} {:>6} {:>6} {:>6}  {:<18} {:<18} {:<18}",
            k.tenant_name,
            k.opened,
            k.auto_resolved,
            k.resolved_by_hand,
            k.escalated,
            k.sla_breaches,
            stat(&k.time_to_detect),
            stat(&k.time_to_acknowledge),
            stat(&k.time_to_resolve)
        );
    }
    Ok(())
}

/// `agents list`
pub async fn agents_list(cfg: &Config, tenant: Option<&str>, as_json: bool) -> Result<()> {
    let s = store(cfg).await?;
    let scope = match tenant {
        Some(t) => Scope::Tenant(tenant_id(&s, t).await?),
        None => Scope::All,
    };
    let agents = s.list_agents(&scope).await?;
    if as_json {
        println!("{}", json!(agents));
        return Ok(());
    }
    println!(
        "{:<36}  {:<20}  {:<11}  {:<12}  {:<8}  LAST SEEN",
        "ID", "HOST", "ROLE", "STATUS", "SITE"
    );
    for a in agents {
        let status = if a.revoked {
            "revoked".to_string()
        } else if a.overdue {
            format!("{} overdue", a.status)
        } else {
            a.status.clone()
        };
        println!(
            "{:<36}  {:<20}  {:<11}  {:<12}  {:<8}  {}",
            a.id,
            a.hostname,
            a.role,
            status,
            a.site,
            a.last_seen_at.map(rfc3339::format).unwrap_or_default()
        );
    }
    Ok(())
}

/// `agents revoke ID`: refused from now on; open sessions close within 1 s.
pub async fn agent_revoke(cfg: &Config, agent_id: &str, actor: &str) -> Result<()> {
    let s = store(cfg).await?;
    let caller = operator(actor);
    let a = s.revoke_agent(&caller, agent_id, now_millis()).await?;
    println!(
        "revoked agent {} ({}); it is refused from now on, open sessions close within a second",
        a.id, a.hostname
    );
    Ok(())
}
