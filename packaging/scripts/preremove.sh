#!/bin/sh
# Drago package: before the files are removed.
#   deb prerm:  remove | upgrade NEW | deconfigure ... | failed-upgrade OLD
#   rpm %preun: 0 (erase) | 1 (upgrade: the old package's files go)
# On a real removal, stops and disables both services; on an upgrade it does
# nothing (postinstall restarts what runs). No systemctl failure fails it.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now drago-server.service drago-agent.service >/dev/null 2>&1 || true
else
	for s in drago-server drago-agent; do
		if [ -x "/etc/init.d/$s" ]; then
			"/etc/init.d/$s" stop >/dev/null 2>&1 || true
		fi
	done
fi
exit 0
