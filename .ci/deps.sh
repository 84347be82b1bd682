#!/usr/bin/env bash
# Installs the Debian packages listed in .ci/apt-packages that are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t want < <(grep -v '^\s*#' .ci/apt-packages | awk 'NF{print $1}')
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages ${missing[*]}; run as root" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
