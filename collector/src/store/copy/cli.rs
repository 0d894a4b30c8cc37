//! `forewarn-collector store copy`: arguments, help, and what it prints
//! (progress on stderr, the summary and next steps on stdout).

use std::io::Write;

use super::{Progress, copy};
use crate::Result;
use crate::store::StoreUrl;

const COPY_HELP: &str = "\
Copies a collector's whole store into a new, empty one, e.g. the embedded \
SQLite file into PostgreSQL: tenants, agents and their certificate records, \
enrollment tokens, API keys, tickets with their timelines, problems and check \
states, maintenance windows and silences, the outbox, the delivery records \
that keep resent reports from counting twice, and the audit log: every table \
the migrations create, ids kept.

The destination is created if needed and migrated first, and must be empty: \
a store that already holds data is refused (copying into it would merge two \
installs). The copy is one transaction: it commits whole or leaves the \
destination empty. Progress goes to stderr, one line per table.

The source may be in use: SQLite is read in one read transaction, a \
consistent snapshot while the old collector keeps writing. Reports it accepts \
after that snapshot are not in the copy, so for the switch-over stop the old \
collector first (agents keep what it has not acknowledged and resend it).

The CA is not in the database: it lives in <data_dir>/pki. Start the \
collector on the new store with the same data_dir (or a copy of its pki \
directory) and the same listen address, and enrolled agents connect without \
enrolling again.

Switching over:
  systemctl stop forewarn-collector
  forewarn-collector store copy \\
      --from sqlite:///var/lib/forewarn-collector/forewarn.db \\
      --to postgres://forewarn@db.example:5432/forewarn
  # in the collector's config (drop any [store] sqlite_path):
  #   [store]
  #   url = \"postgres://forewarn@db.example:5432/forewarn\"
  systemctl start forewarn-collector

Keep the SQLite file until the new store has served for a while. Going back \
is restoring the old [store] setting; what the new store received meanwhile \
is not in the old one.";

/// Store maintenance.
#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Copy every row of a store into a new, empty one (SQLite -> PostgreSQL).
    #[command(long_about = COPY_HELP)]
    Copy {
        /// The store to copy: sqlite:///PATH (may be in use) or postgres://…
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new, empty store: postgres://user[:password]@host[:port]/db
        /// or sqlite:///PATH.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs a `store` command.
pub async fn run(cmd: StoreCommand) -> Result<()> {
    match cmd {
        StoreCommand::Copy { from, to } => copy_command(&from, &to).await,
    }
}

async fn copy_command(from: &str, to: &str) -> Result<()> {
    let (from, to) = (StoreUrl::parse(from)?, StoreUrl::parse(to)?);
    eprintln!("copying {} -> {}", from.display(), to.display());
    // The table being copied, if any: an error names it.
    let mut current: Option<String> = None;
    let mut started = false;
    let result = copy(&from, &to, &mut |p: Progress<'_>| {
        started = true;
        if p.done {
            eprintln!(
                "  {:<20} {:>10} rows  {:>7.2} s",
                p.table,
                p.rows,
                p.elapsed.as_secs_f64()
            );
            current = None;
        } else {
            if p.rows > 0 {
                eprintln!("  {:<20} {:>10} rows so far", p.table, p.rows);
            }
            current = Some(p.table.to_string());
        }
        let _ = std::io::stderr().flush();
    })
    .await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            if started {
                let at = current.map(|t| format!(" at {t}")).unwrap_or_default();
                eprintln!("copy failed{at}: nothing was committed, the destination is as it was");
            }
            return Err(e);
        }
    };
    println!(
        "copied {} rows in {} tables in {:.2} s from {} to {}",
        summary.rows(),
        summary.tables.len(),
        summary.elapsed.as_secs_f64(),
        from.display(),
        to.display()
    );
    println!(
        "next: stop the old collector if it still runs, set [store] url = \"{}\" in its config \
         (same data_dir: the CA in <data_dir>/pki stays), and start it",
        to.display()
    );
    Ok(())
}
