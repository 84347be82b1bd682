#!/bin/sh
# Drago package: after the files are removed.
#   deb postrm:  remove | purge | upgrade NEW | disappear | failed-upgrade | abort-*
#   rpm %postun: 0 (erase) | 1 (upgrade)
# purge (deb only) deletes the configuration and the state: /etc/drago (TLS
# files and join token included) and /var/lib/drago (the server's database,
# the agent's keys). The user drago stays, as Debian advises for system users.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
purge)
	rm -rf /etc/drago /var/lib/drago
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
