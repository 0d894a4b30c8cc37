//! Conformance tests for the list reads: filters and pages applied by the
//! store (tickets, agents, tokens, audit), inside the caller's scope.

use super::{NOW, changes, disk, enroll, new_agent};
use crate::domain::{AgentFilter, CheckState, Page, Scope, TicketFilter, TicketSort, TicketState};
use crate::tickets::Service;

pub async fn lists_filter_and_page_in_the_store(svc: Service) {
    let acme = svc.store().create_tenant("acme").await.expect("tenant");
    let globex = svc.store().create_tenant("globex").await.expect("tenant");
    enroll(&svc, &new_agent("a1", &acme.id)).await;
    let mut a2 = new_agent("a2", &acme.id);
    a2.site = "branch".into();
    a2.role = "workstation".into();
    a2.facts.hostname = "web_02".into();
    enroll(&svc, &a2).await;
    enroll(&svc, &new_agent("g1", &globex.id)).await;
    let store = svc.store();
    let all = Page::everything();

    // Agents: tenant, site, hostname substring (case-insensitive, its `_`
    // and `%` literal), status, overdue, and pages in hostname order.
    let agents = |scope: Scope, f: AgentFilter, page: Page| async move {
        store
            .find_agents(&scope, &f, page)
            .await
            .expect("agents")
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    let of = |t: &str| AgentFilter {
        tenant_id: Some(t.to_string()),
        ..AgentFilter::default()
    };
    assert_eq!(agents(Scope::All, of(&acme.id), all).await, ["a1", "a2"]);
    assert!(
        agents(Scope::Tenant(globex.id.clone()), of(&acme.id), all)
            .await
            .is_empty(),
        "a filter never widens the scope"
    );
    let search = |s: &str| AgentFilter {
        hostname_contains: Some(s.into()),
        ..AgentFilter::default()
    };
    assert_eq!(agents(Scope::All, search("WEB_0"), all).await, ["a2"]);
    assert_eq!(agents(Scope::All, search("HOST-"), all).await, ["a1", "g1"]);
    assert!(agents(Scope::All, search("web%"), all).await.is_empty());
    assert!(agents(Scope::All, search("host_"), all).await.is_empty());
    let site = AgentFilter {
        site: Some("branch".into()),
        ..AgentFilter::default()
    };
    assert_eq!(agents(Scope::All, site, all).await, ["a2"]);
    let enrolled = AgentFilter {
        status: Some("enrolled".into()),
        ..AgentFilter::default()
    };
    assert_eq!(agents(Scope::All, enrolled, all).await.len(), 3);
    let overdue = AgentFilter {
        overdue: Some(true),
        ..AgentFilter::default()
    };
    assert!(agents(Scope::All, overdue, all).await.is_empty());
    let second = Page {
        limit: 1,
        offset: 1,
    };
    assert_eq!(
        agents(Scope::All, AgentFilter::default(), second).await,
        ["g1"]
    );

    // Tickets: a CRIT disk on each agent, opened a1, a2, g1 (a2 is a
    // workstation: a lower priority than the servers').
    for (tenant, agent) in [(&acme.id, "a1"), (&acme.id, "a2"), (&globex.id, "g1")] {
        svc.apply_report(
            tenant,
            agent,
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("apply");
    }
    let tickets = |f: TicketFilter, page: Page| async move {
        store
            .find_tickets(&Scope::All, &f, page)
            .await
            .expect("tickets")
            .into_iter()
            .map(|t| t.agent_id)
            .collect::<Vec<_>>()
    };
    let newest = TicketFilter::default();
    assert_eq!(tickets(newest.clone(), all).await, ["g1", "a2", "a1"]);
    assert_eq!(tickets(newest, second).await, ["a2"]);
    let queue = TicketFilter {
        state: Some(TicketState::Open),
        sort: TicketSort::Priority,
        ..TicketFilter::default()
    };
    assert_eq!(tickets(queue, all).await, ["a1", "g1", "a2"]);
    let narrow = [
        (
            TicketFilter {
                tenant_id: Some(acme.id.clone()),
                ..TicketFilter::default()
            },
            vec!["a2", "a1"],
        ),
        (
            TicketFilter {
                agent_id: Some("a2".into()),
                ..TicketFilter::default()
            },
            vec!["a2"],
        ),
        (
            TicketFilter {
                host: Some("host-g1".into()),
                ..TicketFilter::default()
            },
            vec!["g1"],
        ),
        (
            TicketFilter {
                tier: Some(1),
                ..TicketFilter::default()
            },
            vec!["g1", "a2", "a1"],
        ),
        (
            TicketFilter {
                tier: Some(2),
                ..TicketFilter::default()
            },
            vec![],
        ),
        (
            TicketFilter {
                check: Some("cpu".into()),
                ..TicketFilter::default()
            },
            vec![],
        ),
        (
            TicketFilter {
                state: Some(TicketState::Resolved),
                ..TicketFilter::default()
            },
            vec![],
        ),
    ];
    for (f, want) in narrow {
        assert_eq!(tickets(f.clone(), all).await, want, "{f:?}");
    }

    // Tokens and audit: a tenant filter and pages, newest first.
    let tokens = store
        .find_enrollment_tokens(&Scope::All, Some(&acme.id), all)
        .await
        .expect("tokens");
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let one = store
        .find_enrollment_tokens(&Scope::All, Some(&acme.id), second)
        .await
        .expect("tokens");
    assert_eq!(one, tokens[1..2]);
    for tenant in [&acme.id, &globex.id, &acme.id] {
        store
            .record_audit(crate::store::Audit {
                tenant_id: Some(tenant),
                at: NOW,
                actor: "alice",
                source: "",
                action: "test.listed",
                target: tenant,
                detail: "",
            })
            .await
            .expect("audit");
    }
    let audit = store
        .find_audit(&Scope::All, Some(&globex.id), all)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|e| e.tenant_id.as_deref() == Some(globex.id.as_str()))
    );
    let everything = store
        .find_audit(&Scope::All, None, all)
        .await
        .expect("audit");
    let page = store
        .find_audit(&Scope::All, None, second)
        .await
        .expect("audit");
    assert_eq!(everything.len(), 3, "{everything:?}");
    assert_eq!(page, everything[1..2]);
    assert_eq!(page[0].tenant_id.as_deref(), Some(globex.id.as_str()));
}
