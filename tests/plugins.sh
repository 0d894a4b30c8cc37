#!/usr/bin/env bash
# Real Nagios plugins for the perfdata test (tests/tests/plugin_net.rs):
# installs Debian's monitoring-plugins-basic when /usr/lib/nagios/plugins
# lacks check_procs or check_load. Idempotent; apt-get update only when the
# install fails.
set -euo pipefail
dir=/usr/lib/nagios/plugins
if [ -x "$dir/check_procs" ] && [ -x "$dir/check_load" ]; then
    exit 0
fi
install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends monitoring-plugins-basic)
"${install[@]}" >/dev/null || { env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && "${install[@]}" >/dev/null; }
[ -x "$dir/check_procs" ] && [ -x "$dir/check_load" ]
