# forewarn-agent %postun ($1: 0 on erase, 1 or more on upgrade): restart the
# running service on the new binary. The state in /var/lib/forewarn-agent and
# the service user stay: rpm has no purge (docs/packages.md).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart forewarn-agent.service >/dev/null 2>&1 || :
    fi
fi
exit 0
