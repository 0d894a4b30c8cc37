//! The tables a copy moves, as each backend's catalog describes them, and
//! the plan: the same tables and columns on both sides, in foreign-key order.
//!
//! Nothing here names a table: the list comes from the schema the
//! migrations made, so a table a later migration adds is copied (or the
//! copy refuses, if the two sides disagree) without touching this code.

use crate::{Error, Result};

/// The two column types both schemas hold (see `migrations/postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// SQLite INTEGER, PostgreSQL BIGINT: decoded as `i64`.
    Int,
    /// TEXT on both.
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One table as a catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    pub name: String,
    /// In the catalog's order.
    pub columns: Vec<Column>,
    /// Primary key columns, in key order (rows are read in this order).
    pub key: Vec<String>,
    /// Foreign keys: (column, referenced table).
    pub refs: Vec<(String, String)>,
}

impl Table {
    /// Positions of the columns that reference this table itself
    /// (`tickets.parent_id`): inserted as NULL, set once every row is in,
    /// since a parent may come after its child.
    pub fn self_refs(&self) -> Vec<usize> {
        self.refs
            .iter()
            .filter(|(_, to)| *to == self.name)
            .filter_map(|(col, _)| self.columns.iter().position(|c| c.name == *col))
            .collect()
    }

    /// Positions of the key columns.
    pub fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c.name == *k))
            .collect()
    }

    /// `"a", "b", …`
    pub fn column_list(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| ident(&c.name)).collect();
        names.join(", ")
    }
}

/// A quoted identifier (every name comes from a catalog; quoted anyway).
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The kind of a column from its declared type, or why it cannot be copied.
pub(super) fn kind(table: &str, column: &str, declared: &str) -> Result<Kind> {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => Ok(Kind::Int),
        "text" => Ok(Kind::Text),
        other => Err(Error::Config(format!(
            "{table}.{column} has type {other:?}: the copy handles only integer and text \
             columns (the schema holds no others)"
        ))),
    }
}

/// Checks that both sides hold the same tables, columns (by name and
/// kind) and keys; the destination's tables in foreign-key order (parents
/// first, the catalog's order otherwise).
pub(super) fn plan(source: &[Table], dest: Vec<Table>) -> Result<Vec<Table>> {
    let mut problems = Vec::new();
    for s in source {
        let Some(d) = dest.iter().find(|d| d.name == s.name) else {
            problems.push(format!("table {} is only in the source", s.name));
            continue;
        };
        for c in &s.columns {
            match d.columns.iter().find(|dc| dc.name == c.name) {
                None => problems.push(format!("{}.{} is only in the source", s.name, c.name)),
                Some(dc) if dc.kind != c.kind => problems.push(format!(
                    "{}.{} is {:?} in the source, {:?} in the destination",
                    s.name, c.name, c.kind, dc.kind
                )),
                Some(_) => {}
            }
        }
        for c in &d.columns {
            if !s.columns.iter().any(|sc| sc.name == c.name) {
                problems.push(format!("{}.{} is only in the destination", s.name, c.name));
            }
        }
        if s.key != d.key {
            problems.push(format!(
                "{}: primary key ({}) in the source, ({}) in the destination",
                s.name,
                s.key.join(", "),
                d.key.join(", ")
            ));
        }
    }
    for d in &dest {
        if !source.iter().any(|s| s.name == d.name) {
            problems.push(format!("table {} is only in the destination", d.name));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Config(format!(
            "the source and destination schemas differ ({}): both were migrated to this \
             collector's schema when opened, so one holds tables or columns the migrations \
             did not make; nothing was copied",
            problems.join("; ")
        )));
    }
    fk_order(dest)
}

/// Parents before children; a cycle between tables (none in the schema)
/// is an error.
fn fk_order(mut left: Vec<Table>) -> Result<Vec<Table>> {
    let mut done: Vec<Table> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            t.refs.iter().all(|(_, to)| {
                *to == t.name
                    || done.iter().any(|d| d.name == *to)
                    || !left.iter().any(|l| l.name == *to)
            })
        });
        match ready {
            Some(i) => done.push(left.remove(i)),
            None => {
                let names: Vec<&str> = left.iter().map(|t| t.name.as_str()).collect();
                return Err(Error::Config(format!(
                    "the foreign keys of {} form a cycle: no order to copy them in",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, cols: &[(&str, Kind)], refs: &[(&str, &str)]) -> Table {
        Table {
            name: name.into(),
            columns: cols
                .iter()
                .map(|(n, k)| Column {
                    name: (*n).into(),
                    kind: *k,
                })
                .collect(),
            key: vec![cols[0].0.into()],
            refs: refs
                .iter()
                .map(|(c, t)| ((*c).into(), (*t).into()))
                .collect(),
        }
    }

    #[test]
    fn parents_come_first_and_self_references_are_deferred() {
        let tickets = table(
            "tickets",
            &[
                ("id", Kind::Int),
                ("tenant_id", Kind::Text),
                ("parent_id", Kind::Int),
            ],
            &[("tenant_id", "tenants"), ("parent_id", "tickets")],
        );
        let events = table(
            "ticket_events",
            &[("id", Kind::Int), ("ticket_id", Kind::Int)],
            &[("ticket_id", "tickets")],
        );
        let tenants = table("tenants", &[("id", Kind::Text)], &[]);
        let audit = table("audit_log", &[("id", Kind::Int)], &[]);
        let dest = vec![
            events.clone(),
            tickets.clone(),
            audit.clone(),
            tenants.clone(),
        ];
        let order: Vec<String> = plan(&dest.clone(), dest)
            .expect("plan")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(order, ["audit_log", "tenants", "tickets", "ticket_events"]);
        assert_eq!(tickets.self_refs(), [2]);
        assert!(events.self_refs().is_empty());
    }

    #[test]
    fn schemas_that_differ_are_refused_naming_each_difference() {
        let src = vec![
            table("a", &[("id", Kind::Int), ("x", Kind::Text)], &[]),
            table("only_src", &[("id", Kind::Int)], &[]),
        ];
        let dst = vec![
            table(
                "a",
                &[("id", Kind::Int), ("x", Kind::Int), ("y", Kind::Text)],
                &[],
            ),
            table("only_dst", &[("id", Kind::Int)], &[]),
        ];
        let e = plan(&src, dst).expect_err("differ").to_string();
        for part in [
            "a.x is Text in the source, Int in the destination",
            "a.y is only in the destination",
            "table only_src is only in the source",
            "table only_dst is only in the destination",
        ] {
            assert!(e.contains(part), "{part:?} missing in {e}");
        }
    }

    #[test]
    fn a_cycle_between_tables_is_an_error() {
        let a = table("a", &[("id", Kind::Int), ("b", Kind::Int)], &[("b", "b")]);
        let b = table("b", &[("id", Kind::Int), ("a", Kind::Int)], &[("a", "a")]);
        let e = plan(&[a.clone(), b.clone()], vec![a, b]).expect_err("cycle");
        assert!(e.to_string().contains("cycle"), "{e}");
    }

    #[test]
    fn only_integer_and_text_columns_are_copied() {
        assert_eq!(kind("t", "c", "INTEGER").expect("int"), Kind::Int);
        assert_eq!(kind("t", "c", "bigint").expect("bigint"), Kind::Int);
        assert_eq!(kind("t", "c", "TEXT").expect("text"), Kind::Text);
        let e = kind("t", "c", "REAL").expect_err("real").to_string();
        assert!(e.contains("t.c") && e.contains("real"), "{e}");
    }
}
