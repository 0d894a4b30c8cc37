# forewarn-agent %pre: the service user, before the files arrive (the config
# file is group-owned by it).
getent group forewarn-agent >/dev/null || groupadd --system forewarn-agent
getent passwd forewarn-agent >/dev/null || useradd --system --gid forewarn-agent \
    --home-dir /var/lib/forewarn-agent --no-create-home --shell /usr/sbin/nologin \
    --comment "Forewarn agent" forewarn-agent
exit 0
