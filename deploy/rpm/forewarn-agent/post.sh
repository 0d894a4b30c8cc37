# forewarn-agent %post ($1: 1 on first install, 2 or more on upgrade): the
# unit is enabled on first install, and started only where systemd runs.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    systemctl enable forewarn-agent.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl start forewarn-agent.service >/dev/null 2>&1 || :
    fi
fi
exit 0
