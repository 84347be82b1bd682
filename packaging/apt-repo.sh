#!/usr/bin/env bash
# Builds a signed APT repository from the .deb files in $DIST/pkg (make apt-repo):
#
#   $DIST/apt/pool/main/d/drago/*.deb
#   $DIST/apt/dists/stable/main/binary-{amd64,arm64,armhf}/Packages{,.gz}
#   $DIST/apt/dists/stable/{Release,InRelease,Release.gpg}
#   $DIST/apt/drago-archive-keyring.gpg   the public key, for signed-by=
#
# Signed, not [trusted=yes]: apt then checks the repository exactly as it
# would a published one, and the test proves the signing works. The key is
# APT_KEY_ID from the keyring in APT_GNUPGHOME when given (a release key);
# otherwise a throwaway ed25519 key, made once in APT_GNUPGHOME (default
# $DIST/apt-gnupg) and reused, so that a rebuilt repository stays valid for
# the machines that trust it. Needs dpkg-scanpackages (dpkg-dev),
# apt-ftparchive (apt-utils) and gpg.
set -euo pipefail

DIST=${DIST:-dist}
APT_GNUPGHOME=${APT_GNUPGHOME:-$DIST/apt-gnupg}
APT_KEY_ID=${APT_KEY_ID:-}
repo=$DIST/apt
suite=stable
archs=(amd64 arm64 armhf)

for tool in dpkg-scanpackages apt-ftparchive gpg gpgconf; do
	command -v "$tool" >/dev/null || { echo "apt-repo: $tool is missing (apt-get install dpkg-dev apt-utils gnupg)" >&2; exit 1; }
done
shopt -s nullglob
debs=("$DIST"/pkg/*.deb)
((${#debs[@]})) || { echo "apt-repo: no .deb files in $DIST/pkg (run make packages)" >&2; exit 1; }

rm -rf "$repo"
mkdir -p "$repo/pool/main/d/drago"
cp "${debs[@]}" "$repo/pool/main/d/drago/"

cd "$repo"
for a in "${archs[@]}"; do
	d=dists/$suite/main/binary-$a
	mkdir -p "$d"
	# --multiversion keeps every version in the pool, not only the newest.
	dpkg-scanpackages --multiversion --arch "$a" pool /dev/null >"$d/Packages" 2>/dev/null
	gzip -9nk "$d/Packages"
done
apt-ftparchive \
	-o APT::FTPArchive::Release::Origin=Drago \
	-o APT::FTPArchive::Release::Label=Drago \
	-o APT::FTPArchive::Release::Suite=$suite \
	-o APT::FTPArchive::Release::Codename=$suite \
	-o APT::FTPArchive::Release::Architectures="${archs[*]}" \
	-o APT::FTPArchive::Release::Components=main \
	-o APT::FTPArchive::Release::Description="Drago packages" \
	release dists/$suite >Release.tmp
mv Release.tmp dists/$suite/Release
cd - >/dev/null

mkdir -p "$APT_GNUPGHOME"
chmod 0700 "$APT_GNUPGHOME"
export GNUPGHOME
GNUPGHOME=$(cd "$APT_GNUPGHOME" && pwd)
# gpg starts an agent for secret-key work; stop it whatever happens.
trap 'gpgconf --kill gpg-agent >/dev/null 2>&1 || true' EXIT
key=$APT_KEY_ID
if [ -z "$key" ]; then
	uid="Drago throwaway repository key (made by make apt-repo) <apt@drago-wg.invalid>"
	if ! gpg --batch --quiet --list-secret-keys "$uid" >/dev/null 2>&1; then
		echo "apt-repo: making a throwaway signing key in $APT_GNUPGHOME" >&2
		gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
			--quick-generate-key "$uid" ed25519 sign never
	fi
	key=$(gpg --batch --quiet --with-colons --list-secret-keys "$uid" 2>/dev/null | awk -F: '$1 == "fpr" {print $10; exit}')
fi
rel=$repo/dists/$suite
rm -f "$rel/InRelease" "$rel/Release.gpg"
gpg --batch --yes --pinentry-mode loopback --passphrase '' --local-user "$key" --clearsign -o "$rel/InRelease" "$rel/Release"
gpg --batch --yes --pinentry-mode loopback --passphrase '' --local-user "$key" --detach-sign -o "$rel/Release.gpg" "$rel/Release"
gpg --batch --yes --export "$key" >"$repo/drago-archive-keyring.gpg"
echo "apt-repo: $repo signed by $key (${#debs[@]} packages)"
