#!/usr/bin/env bash
# Prints the vulnerability database URL for `govulncheck -db`:
#   $VULNDB when set (e.g. https://vuln.go.dev or file:///path/to/db);
#   https://vuln.go.dev when it answers;
#   otherwise the file:// URL of an offline copy that .ci/vulndb/main.go builds
#   from the golang.org/x/vulndb module served by the Go module proxy
#   ($VULNDB_VERSION picks its version, default latest). See docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${VULNDB:-}" ]; then
	echo "$VULNDB"
	exit
fi
if command -v curl >/dev/null && curl -fsS -m 5 -o /dev/null https://vuln.go.dev/index/db.json.gz 2>/dev/null; then
	echo "vulndb: using https://vuln.go.dev" >&2
	echo https://vuln.go.dev
	exit
fi
echo "vulndb: vuln.go.dev unreachable; using an offline database" >&2
exec go run ./.ci/vulndb -version "${VULNDB_VERSION:-latest}" \
	-cache "${VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drago/vulndb}"
