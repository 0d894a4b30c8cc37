//! The health check and the per-tenant mapping, read from ConnectWise
//! with lookups only (nothing is written).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Deserialize;

use super::api::{ConnectWise, quoted};
use crate::sinks::CheckResult;

#[derive(Deserialize)]
struct Company {
    id: i64,
    identifier: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BoardStatus {
    id: i64,
    name: String,
    #[serde(default)]
    closed_status: bool,
}

impl ConnectWise {
    /// `GET /system/info`, then every configured board (with its closed
    /// status), every configured company and the mapped priorities.
    pub(super) async fn check(&self) -> CheckResult {
        let version = self.version().await.map_err(|f| f.message())?;
        let mut boards: BTreeSet<(String, &str)> = BTreeSet::new();
        boards.insert(("board".to_string(), self.s.board.as_str()));
        for (t, b) in &self.s.boards {
            boards.insert((format!("boards.{t}"), b.as_str()));
        }
        let mut problems = Vec::new();
        for (key, name) in &boards {
            match self.board_id(name, key).await {
                Ok(id) => {
                    if let Err(f) = self.closed_status_id(id).await {
                        problems.push(f.message());
                    }
                }
                Err(f) => problems.push(f.message()),
            }
        }
        for (t, identifier) in &self.s.companies {
            if let Err(f) = self.company_id(identifier, &format!("companies.{t}")).await {
                problems.push(f.message());
            }
        }
        match self.priorities().await {
            Ok(all) => {
                for (p, name) in &self.s.priorities {
                    if !all.contains_key(name) {
                        problems.push(format!(
                            "ConnectWise has no priority named {name:?} (priorities.{p})"
                        ));
                    }
                }
            }
            Err(f) => problems.push(f.message()),
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(format!(
            "ConnectWise {version}: credentials accepted; {} board(s) with status {:?}, {} company(ies) and {} priorities found",
            boards.len(),
            self.s.closed_status,
            self.s.companies.len(),
            self.s.priorities.len()
        ))
    }

    /// The tenant's company (or candidates by name), board, statuses and
    /// priorities, and the lines to paste into the config.
    pub(super) async fn map(&self, tenant: &str) -> CheckResult {
        let mut out = String::new();
        let mut paste = Vec::new();
        match self.s.companies.get(tenant) {
            Some(identifier) => {
                let cond = format!("identifier={}", quoted(identifier));
                let found = self.companies(&cond).await?;
                match found.first() {
                    Some(c) => {
                        let _ = writeln!(
                            out,
                            "company: {} = {:?} (id {})",
                            c.identifier, c.name, c.id
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "company: ConnectWise has no company with identifier {identifier:?} (companies.{tenant})"
                        );
                    }
                }
            }
            None => {
                let cond = format!("name like {}", quoted(&format!("%{tenant}%")));
                let found = self.companies(&cond).await?;
                let _ = writeln!(
                    out,
                    "company: not configured (companies.{tenant}); {} candidate(s) named like {tenant:?}:",
                    found.len()
                );
                for c in &found {
                    let _ = writeln!(out, "  {} = {:?} (id {})", c.identifier, c.name, c.id);
                }
                let pick = found
                    .first()
                    .map_or("<company identifier>", |c| c.identifier.as_str());
                paste.push(format!("companies.{tenant} = {pick:?}"));
            }
        }
        let (key, board) = self.board_of(tenant, tenant);
        let id = self.board_id(board, &key).await.map_err(|f| f.message())?;
        let statuses: Vec<BoardStatus> = self
            .get(
                &format!("/service/boards/{id}/statuses"),
                &[("fields", "id,name,closedStatus"), ("pageSize", "1000")],
            )
            .await
            .map_err(|f| f.message())?;
        let _ = writeln!(out, "board: {board:?} (id {id}, from {key}); statuses:");
        for s in &statuses {
            let mark = match (s.name == self.s.closed_status, s.closed_status) {
                (true, _) => "  <- closed_status",
                (false, true) => "  (a closed status)",
                (false, false) => "",
            };
            let _ = writeln!(out, "  {:?} (id {}){mark}", s.name, s.id);
        }
        if !statuses.iter().any(|s| s.name == self.s.closed_status) {
            let _ = writeln!(
                out,
                "  no status named {:?} (closed_status) on this board",
                self.s.closed_status
            );
        }
        let all = self.priorities().await.map_err(|f| f.message())?;
        let _ = writeln!(out, "priorities:");
        for (p, name) in &self.s.priorities {
            match all.get(name) {
                Some(id) => {
                    let _ = writeln!(out, "  {p} -> {name:?} (id {id})");
                }
                None => {
                    let _ = writeln!(out, "  {p} -> {name:?}: no such priority in ConnectWise");
                }
            }
        }
        if !paste.is_empty() {
            let _ = writeln!(out, "add to this [[sinks.connectwise]]:");
            for l in paste {
                let _ = writeln!(out, "  {l}");
            }
        }
        Ok(out)
    }

    async fn companies(&self, cond: &str) -> Result<Vec<Company>, String> {
        self.get(
            "/company/companies",
            &[
                ("conditions", cond),
                ("fields", "id,identifier,name"),
                ("pageSize", "10"),
            ],
        )
        .await
        .map_err(|f| f.message())
    }
}
