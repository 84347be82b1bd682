#!/bin/sh
# Drago package: after the files are unpacked.
#   deb postinst: configure OLD-VERSION (empty on a first install) | abort-*
#   rpm %post:    1 (install) | 2 (upgrade)
# Never enables or starts a service: the agent needs a server and a join token
# in /etc/drago/agent.hcl first, and most hosts run the agent, not the server.
# On an upgrade it restarts the services that are running, so that they run
# the new binary. Works with and without a running systemd: no systemctl
# failure fails the install.
set -e

case "$1" in
configure) if [ -n "$2" ]; then upgrade=1; else upgrade=0; fi ;;
1) upgrade=0 ;;
2) upgrade=1 ;;
*) exit 0 ;;
esac

# The package ships these folders; set owners and modes again in case the
# user drago was created after an earlier unpack or an admin changed them.
# /var/lib/drago is only traversable (0711) so that the server (user drago)
# reaches /var/lib/drago/server; each service's folder is its own (0700).
chown root:root /var/lib/drago && chmod 0711 /var/lib/drago
chown drago:drago /var/lib/drago/server && chmod 0700 /var/lib/drago/server
chown root:root /var/lib/drago/agent && chmod 0700 /var/lib/drago/agent
chown root:drago /etc/drago && chmod 0750 /etc/drago

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || echo "drago: systemctl daemon-reload failed; run it by hand" >&2
	if [ "$upgrade" = 1 ]; then
		# try-restart restarts running units only: nothing stopped is started.
		systemctl try-restart drago-server.service drago-agent.service >/dev/null 2>&1 ||
			echo "drago: restarting the running drago services failed; restart them by hand" >&2
	fi
elif [ "$upgrade" = 1 ]; then
	# Without systemd, services installed by `drago service install` are SysV
	# init scripts: restart those that run.
	for s in drago-server drago-agent; do
		if [ -x "/etc/init.d/$s" ] && "/etc/init.d/$s" status >/dev/null 2>&1; then
			"/etc/init.d/$s" restart >/dev/null 2>&1 || echo "drago: restarting $s failed; restart it by hand" >&2
		fi
	done
fi

if [ "$upgrade" = 0 ]; then
	cat <<'MSG'
Drago is installed; no service was enabled or started.
  Control plane: edit /etc/drago/server.hcl, then  systemctl enable --now drago-server
  Host agent:    set server and a join token in /etc/drago/agent.hcl, then  systemctl enable --now drago-agent
MSG
fi
exit 0
