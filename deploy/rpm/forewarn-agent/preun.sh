# forewarn-agent %preun ($1: 0 on erase, 1 or more on upgrade): stop and
# disable the unit on erase only.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop forewarn-agent.service >/dev/null 2>&1 || :
    fi
    systemctl disable forewarn-agent.service >/dev/null 2>&1 || :
fi
exit 0
