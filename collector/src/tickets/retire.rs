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
//! ticket says why. Its check state is deleted (which frees its place under
//! the series caps), and so is its problem once no ticket of it is open.

use super::engine::Step;
use super::policy::Policy;
use super::problems::{self, AgentCtx};
use super::service::Desk;
use crate::Result;
use crate::domain::{CheckState, Millis};
use crate::store::StoredCheck;

/// Heartbeat intervals a check may be missing before it is retired.
pub const RETIRE_AFTER_HEARTBEATS: i64 = 3;

/// The message a retired check's problem ends with.
pub const RETIRED_MESSAGE: &str = "no longer reported by the agent (check removed or item gone)";

/// Retires the checks of `ctx`'s agent that its heartbeats have left out
/// for long enough; called while applying a heartbeat, after its results,
/// with the stored check states that heartbeat did not carry.
pub async fn retire_unreported(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    unreported: Vec<StoredCheck>,
    now: Millis,
) -> Result<Vec<Step>> {
    // `ctx` was read in this transaction; nothing since changes these two.
    let window = RETIRE_AFTER_HEARTBEATS * ctx.row.interval_secs.max(1) * 1000;
    let cutoff = now - window;
    if ctx.row.connected_at.is_none_or(|at| at > cutoff) {
        return Ok(Vec::new());
    }
    let agent_id = ctx.row.agent_id.as_str();
    let mut steps = Vec::new();
    for g in unreported.into_iter().filter(|c| c.updated_at < cutoff) {
        tracing::info!(
            agent_id,
            check = g.check,
            item = g.item,
            "check no longer reported by the agent: retired"
        );
        if g.state != CheckState::Ok.as_str() {
            steps.extend(
                problems::observe(
                    desk,
                    policy,
                    ctx,
                    &g.check,
                    &g.item,
                    CheckState::Ok,
                    RETIRED_MESSAGE,
                    now,
                    now,
                )
                .await?,
            );
        }
        desk.tx
            .delete_check_state(agent_id, &g.check, &g.item)
            .await?;
        // A problem with no open ticket has nothing left to decide: forget
        // it. One whose ticket waits out its recovery time is forgotten by
        // the sweep once that ticket resolves (`problems::tick`).
        let p = problems::load_problem(desk.tx.as_mut(), ctx, &g.check, &g.item).await?;
        if p.problem.open_ticket().is_none() {
            let fp = super::fingerprint(agent_id, &g.check, &g.item);
            desk.tx.delete_problem(&ctx.row.tenant_id, &fp).await?;
        }
    }
    Ok(steps)
}
