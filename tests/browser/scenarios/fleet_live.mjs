// Only the live update: sign in (args.who), open the fleet, see args.host
// turn CRIT without a reload (see fleet_lib.mjs watchTurnCrit).

import { signIn, watchTurnCrit } from "./fleet_lib.mjs";

export async function run(page, args, ctx) {
  await signIn(page, args.base_url, args.who);
  const { delay_ms, reloaded } = await watchTurnCrit(page, args, ctx);
  return { delay_ms, reloaded };
}
