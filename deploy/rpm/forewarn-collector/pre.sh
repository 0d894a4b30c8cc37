# forewarn-collector %pre: the service user, before the files arrive (the config
# file is group-owned by it).
getent group forewarn-collector >/dev/null || groupadd --system forewarn-collector
getent passwd forewarn-collector >/dev/null || useradd --system --gid forewarn-collector \
    --home-dir /var/lib/forewarn-collector --no-create-home --shell /usr/sbin/nologin \
    --comment "Forewarn collector" forewarn-collector
exit 0
