//! Checks an agent no longer reports: removed from its config, or an item
//! that went away (an unmounted disk, a deleted log file's check).
//!
//! Every heartbeat carries every check's current result, so a check
//! missing from the agent's heartbeats for [`RETIRE_AFTER_HEARTBEATS`]
//! intervals *of one session* is gone. Counting only within a session
//! matters: after a reconnect the first heartbeats can come before a slow
//! probe's first result, and reports replayed from the spool are old.
//!
//! A retired check is fed to the engine as OK ("no longer reported by the
//! agent"), so its problem resolves by the usual recovery rule and any open
//! ticket says why, and its row is deleted (which also frees its place
//! under the series caps).

use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::tickets::engine::Step;
use crate::tickets::policy::Policy;

use super::problems::{self, AgentCtx, Tx};

/// Heartbeat intervals a check may be missing before it is retired.
pub const RETIRE_AFTER_HEARTBEATS: i64 = 3;

/// The message a retired check's problem ends with.
pub const RETIRED_MESSAGE: &str = "no longer reported by the agent (check removed or item gone)";

/// Retires the checks of `ctx`'s agent that its heartbeats have left out
/// for long enough; called while applying a heartbeat, after its results.
pub(super) async fn retire_unreported(
    tx: &mut Tx,
    policy: &Policy,
    ctx: &AgentCtx,
    now: Millis,
) -> Result<Vec<Step>> {
    // `ctx` was read in this transaction; nothing since changes these two.
    let window = RETIRE_AFTER_HEARTBEATS * ctx.interval_secs.max(1) * 1000;
    let cutoff = now - window;
    if ctx.connected_at.is_none_or(|at| at > cutoff) {
        return Ok(Vec::new());
    }
    let gone: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT check_kind, item, state FROM check_states WHERE agent_id = ? AND updated_at < ?",
    )
    .bind(&ctx.agent_id)
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    let mut steps = Vec::new();
    for (check, item, state) in gone {
        tracing::info!(
            agent_id = ctx.agent_id,
            check,
            item,
            "check no longer reported by the agent: retired"
        );
        if state != CheckState::Ok.as_str() {
            steps.extend(
                problems::observe(
                    tx,
                    policy,
                    ctx,
                    &check,
                    &item,
                    CheckState::Ok,
                    RETIRED_MESSAGE,
                    now,
                    now,
                )
                .await?,
            );
        }
        sqlx::query("DELETE FROM check_states WHERE agent_id = ? AND check_kind = ? AND item = ?")
            .bind(&ctx.agent_id)
            .bind(&check)
            .bind(&item)
            .execute(&mut **tx)
            .await?;
    }
    Ok(steps)
}
