#!/bin/sh
# Drago package: before the files are unpacked.
#   deb preinst:  install | upgrade OLD | abort-upgrade NEW
#   rpm %pre:     1 (install) | 2 (upgrade)
# Creates the system user drago, which drago-server.service runs as and which
# owns /var/lib/drago/server. Safe to run again; an existing user is kept.
set -e

if ! getent group drago >/dev/null 2>&1; then
	groupadd --system drago
fi
if ! getent passwd drago >/dev/null 2>&1; then
	useradd --system --gid drago --home-dir /var/lib/drago/server --no-create-home \
		--shell /usr/sbin/nologin --comment "Drago control plane" drago
fi
exit 0
