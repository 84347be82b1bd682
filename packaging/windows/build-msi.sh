#!/usr/bin/env bash
# Builds the Windows x64 MSI (make msi) from $DIST/bin/drago-windows-amd64.exe:
#   $MSI_DIR/drago-$PKG_VERSION-x64.msi   (MSI_DIR defaults to $DIST/msi)
# Environment:
#   WIREGUARD_DLL  required: the amd64 wireguard.dll (wireguard-nt) to ship;
#                  it cannot be downloaded here, so the build takes its path
#   MSI_VERSION    numeric a.b.c ProductVersion (MajorUpgrade compares it)
#   PKG_VERSION    the version in the file name (default MSI_VERSION)
#   SIGN_CERT, SIGN_KEY  PEM certificate (chain) and key: when both are set,
#                  drago.exe and the MSI are Authenticode-signed (osslsigncode)
#   SIGN_TIMESTAMP_URL   optional RFC 3161 time-stamp server for the signatures
# wixl has no arm64 support: there is no Windows arm64 MSI (the arm64 .exe is
# built by make cross).
set -euo pipefail

DIST=${DIST:-dist}
MSI_DIR=${MSI_DIR:-$DIST/msi}
MSI_VERSION=${MSI_VERSION:-}
PKG_VERSION=${PKG_VERSION:-$MSI_VERSION}
WIREGUARD_DLL=${WIREGUARD_DLL:-}
SIGN_CERT=${SIGN_CERT:-}
SIGN_KEY=${SIGN_KEY:-}
SIGN_TIMESTAMP_URL=${SIGN_TIMESTAMP_URL:-}
src=$(cd "$(dirname "$0")" && pwd)
exe=$DIST/bin/drago-windows-amd64.exe

die() { echo "msi: $*" >&2; exit 1; }
for tool in wixl msibuild; do
	command -v "$tool" >/dev/null || die "$tool is missing (apt-get install wixl msitools)"
done
[ -n "$WIREGUARD_DLL" ] || die "set WIREGUARD_DLL to the amd64 wireguard.dll to ship (make msi WIREGUARD_DLL=path/wireguard.dll)"
[ -f "$WIREGUARD_DLL" ] || die "WIREGUARD_DLL: no file $WIREGUARD_DLL"
if [ "$(head -c 2 "$WIREGUARD_DLL")" != MZ ]; then
	echo "msi: WARNING: $WIREGUARD_DLL is not a Windows DLL (a stand-in?): this MSI cannot run WireGuard" >&2
fi
[[ $MSI_VERSION =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "MSI_VERSION must be numeric a.b.c, got '$MSI_VERSION'"
((BASH_REMATCH[1] <= 255 && BASH_REMATCH[2] <= 255 && BASH_REMATCH[3] <= 65535)) || die "MSI_VERSION $MSI_VERSION is above 255.255.65535"
[ -f "$exe" ] || die "no $exe (run make cross)"
if [ -n "$SIGN_CERT$SIGN_KEY" ]; then
	[ -f "$SIGN_CERT" ] && [ -f "$SIGN_KEY" ] || die "SIGN_CERT and SIGN_KEY must both name files"
	command -v osslsigncode >/dev/null || die "osslsigncode is missing"
fi

# sign IN OUT: Authenticode signature with SHA-256 when a certificate is given.
sign() {
	local ts=()
	[ -z "$SIGN_TIMESTAMP_URL" ] || ts=(-ts "$SIGN_TIMESTAMP_URL")
	osslsigncode sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n Drago \
		-i https://github.com/drago-wg/drago "${ts[@]}" -in "$1" -out "$2" >/dev/null
}

stage=$MSI_DIR/stage
rm -rf "$stage"
mkdir -p "$stage"
if [ -n "$SIGN_CERT" ]; then
	sign "$exe" "$stage/drago.exe"
else
	cp "$exe" "$stage/drago.exe"
fi
cp "$WIREGUARD_DLL" "$stage/wireguard.dll"
# Text files with CRLF line ends, for Notepad.
sed 's/$/\r/' "$src/agent.hcl" >"$stage/agent.hcl"
sed 's/$/\r/' "$src/../../LICENSE" >"$stage/LICENSE.txt"

out=$MSI_DIR/drago-$PKG_VERSION-x64.msi
rm -f "$out"
# wixl finds File sources relative to the .wxs file.
cp "$src/drago.wxs" "$stage/drago.wxs"
wixl -a x64 -D Version="$MSI_VERSION" -o "$out" "$stage/drago.wxs"

# What wixl 0.101 cannot say in WiX source:
# - AgentConfig: msidbComponentAttributes64bit (256) + Permanent (16) +
#   NeverOverwrite (128): agent.hcl is installed once, then left alone by
#   upgrades and uninstall.
# - MajorUpgrade with AllowSameVersionUpgrades: the upgrade row includes its
#   maximum (512), so a rebuild of the same version also replaces in place.
# - The install folder appended to the system PATH (removed on uninstall),
#   as WiX's <Environment Name="PATH" Part="last" System="yes"/> would.
q() { msibuild "$out" -q "$1" >/dev/null || die "msibuild failed: $1"; }
q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'AgentConfig'"
# Attributes is part of the Upgrade table's key: replace the row.
code=$(msiinfo export "$out" Property | awk -F'\t' '$1 == "UpgradeCode" {print toupper($2)}' | tr -d '\r')
q "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'"
q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$code', '$MSI_VERSION', 513, 'WIX_UPGRADE_DETECTED')"
q "CREATE TABLE \`Environment\` (\`Environment\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL LOCALIZABLE, \`Value\` CHAR(255) LOCALIZABLE, \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`Environment\`)"
q "INSERT INTO \`Environment\` (\`Environment\`, \`Name\`, \`Value\`, \`Component_\`) VALUES ('PathInstallDir', '=-*PATH', '[~];[INSTALLDIR]', 'DragoExe')"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)"

if [ -n "$SIGN_CERT" ]; then
	sign "$out" "$out.signed"
	mv "$out.signed" "$out"
fi
rm -rf "$stage"
echo "msi: $out (ProductVersion $MSI_VERSION$([ -n "$SIGN_CERT" ] && echo ", signed"))"
