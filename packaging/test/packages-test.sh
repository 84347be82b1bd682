#!/usr/bin/env bash
# Package tests: `make packages-test` (run by `make test`), as root on Debian.
# make has built $DIST (cross, packages, apt-repo) first; this script builds
# what else it needs (an upgrade build, the MSIs) in a temporary folder and
# checks:
#
#  1. cross: every binary is a static (CGO_ENABLED=0) build for its platform
#     with the dashboard embedded; linux/amd64 runs here, linux/arm64 and
#     linux/arm (v7 on a Cortex-A7, v6 on the Pi Zero's ARM1176) under
#     qemu-user-static and windows/amd64 under Wine, each printing its
#     version, commit, build date and platform.
#  2. ARM: the unit tests of ./server/... and ./agent/ for linux/arm64 and
#     linux/arm (GOARM=7) under qemu-user-static (go test -exec).
#  3. packages: the .deb and .rpm of every architecture: files, owners and
#     modes, conffiles and %config(noreplace), maintainer scripts, the
#     payload's architecture, the completions' syntax.
#  4. apt: the signed repository as an apt source; apt-get install drago;
#     files, modes, the user drago, the units (systemd-analyze verify), none
#     enabled; the server running as drago with the shipped config; the agent
#     refusing to run unconfigured; an upgrade to a newer build (one conffile
#     changed upstream) keeping local edits; apt-get purge; the source removed.
#  5. dpkg -i, upgrade, remove and purge with a simulated running systemd
#     whose systemctl always fails, and with a SysV init script: no step
#     fails, nothing is enabled or started, running services are restarted
#     on upgrade.
#  6. MSI: its tables and Authenticode signatures (a throwaway self-signed
#     certificate); under Wine: install, PATH, service, upgrade in place with
#     the config edit kept, downgrade refused, uninstall.
#     The MSI ships a STAND-IN text file as wireguard.dll (the real wireguard-nt
#     driver cannot be downloaded here): it is named so and never published.
#
# It stops at the first failure and leaves nothing installed: the package is
# purged, the apt source and its lists removed, the user drago deleted if the
# test created it, Wine stopped, the temporary folder deleted.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

GO=${GO:-go}
MAKE=${MAKE:-make}
DIST=$(cd "${DIST:-dist}" && pwd)
: "${VERSION:?}" "${COMMIT:?}" "${DATE:?}" "${PKG_VERSION:?}" "${MSI_VERSION:?}"

passed=0
t0=$SECONDS
ts=$SECONDS
ok() { passed=$((passed + 1)); }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
section() {
	echo "== $* (previous step $((SECONDS - ts))s)"
	ts=$SECONDS
}
# expect DESC WANT GOT
expect() {
	[ "$2" == "$3" ] || fail "$1: want [$2], got [$3]"
	ok
}
# expect_match DESC ERE TEXT
expect_match() {
	grep -Eq -- "$2" <<<"$3" || fail "$1: no match for /$2/ in:
$3"
	ok
}
# expect_mode PATH "MODE OWNER GROUP"
expect_mode() {
	[ -e "$1" ] || fail "$1 is missing"
	expect "mode of $1" "$2" "$(stat -c '%a %U %G' "$1")"
}
expect_absent() {
	for p; do
		[ ! -e "$p" ] || fail "$p should be gone"
		ok
	done
}

[ "$(id -u)" = 0 ] || fail "run as root: the test installs, upgrades and purges the drago package"
for tool in dpkg-deb dpkg-scanpackages apt-ftparchive apt-get rpm wixl msiinfo msibuild msiextract osslsigncode \
	qemu-aarch64-static qemu-arm-static wine wineserver systemd-analyze gpg openssl unshare setpriv zsh fish; do
	command -v "$tool" >/dev/null || fail "$tool is missing: run make deps (.ci/apt-packages)"
done
if dpkg-query -W -f='${Status}' drago 2>/dev/null | grep -qv 'not-installed'; then
	fail "the package drago is installed on this machine; the test installs and purges it: remove it first (dpkg -P drago)"
fi
user_existed=0
getent passwd drago >/dev/null && user_existed=1

work=$(mktemp -d /tmp/drago-pkgtest.XXXXXX)
chmod 0755 "$work" # apt's _apt user reads the repository and the keyring
apt_source=/etc/apt/sources.list.d/drago-packages-test.list
server_pid=
cleanup() {
	rc=$?
	set +e
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
	if dpkg-query -W -f='${Status}' drago 2>/dev/null | grep -qv 'not-installed'; then
		dpkg --purge drago >/dev/null 2>&1
	fi
	rm -f "$apt_source"
	find /var/lib/apt/lists -maxdepth 1 -name "*${work##*/}*" -delete 2>/dev/null
	if [ "$user_existed" = 0 ] && getent passwd drago >/dev/null; then
		userdel drago
		getent group drago >/dev/null && groupdel drago
	fi
	[ ! -d "$work/wine" ] || WINEPREFIX=$work/wine wineserver -k 2>/dev/null
	rm -rf "$work"
	if [ "$rc" = 0 ]; then
		echo "packages-test: all checks passed in $((SECONDS - t0))s"
		echo "$passed passed, 0 failed"
	else
		echo "packages-test: FAILED after $((SECONDS - t0))s"
		echo "$passed passed, 1 failed"
	fi
	exit "$rc"
}
trap cleanup EXIT

# submake ARGS: make in the repository without the caller's MAKEFLAGS (whose
# variables would override ours).
submake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "$MAKE" --no-print-directory -C "$root" "$@"; }
want_version() { echo "drago $VERSION (commit $COMMIT, built $DATE, $1)"; }
# VERSION as an extended regular expression.
version_re=$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$VERSION")

# Wine, for windows/amd64: a fresh prefix, quiet, without the Mono and Gecko
# installers. Wine 8.0 lacks bcryptprimitives.dll (ProcessPrng), which the Go
# runtime needs since Go 1.22: wineprng writes a forwarder DLL for it.
export WINEPREFIX=$work/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
wine_setup() {
	wineboot --init >"$work/wine.log" 2>&1 || fail "wineboot failed: $(tail -5 "$work/wine.log")"
	"$GO" run ./packaging/test/wineprng "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
}
winrun() { wine "$@" 2>>"$work/wine.log" | tr -d '\r'; }

# ---------------------------------------------------------------------------
section "1. cross binaries"
asset=$(grep -oE 'assets/index-[A-Za-z0-9_-]+\.js' webapp/ui/dist/index.html | head -1)
[ -n "$asset" ] || fail "webapp/ui/dist/index.html names no assets/index-*.js: is the dashboard built (make webapp)?"
wine_setup
for t in linux-amd64 linux-arm64 linux-armv6 linux-armv7 windows-amd64 windows-arm64 darwin-amd64 darwin-arm64; do
	os=${t%%-*} arch=${t#*-} goarm=
	case $arch in armv6 | armv7) goarm=${arch#armv} arch=arm ;; esac
	bin=$DIST/bin/drago-$t
	[ "$os" != windows ] || bin=$bin.exe
	[ -f "$bin" ] || fail "$bin is missing"
	info=$("$GO" version -m "$bin")
	for kv in CGO_ENABLED=0 GOOS=$os GOARCH=$arch ${goarm:+GOARM=$goarm} -trimpath=true; do
		grep -qP "^\tbuild\t\Q$kv\E$" <<<"$info" || fail "$bin: go version -m lacks build $kv:
$info"
		ok
	done
	grep -qF "$asset" "$bin" || fail "$bin does not embed the dashboard ($asset): cmd/drago must serve webapp.Handler()"
	ok
	case $t in
	linux-amd64) got=$("$bin" version) ;;
	linux-arm64) got=$(qemu-aarch64-static "$bin" version) ;;
	linux-armv7) got=$(qemu-arm-static -cpu cortex-a7 "$bin" version) ;;
	linux-armv6) got=$(qemu-arm-static -cpu arm1176 "$bin" version) ;;
	windows-amd64) got=$(winrun "$bin" version) ;;
	windows-arm64) got=skip; expect "$bin is a PE file" MZ "$(head -c 2 "$bin")" ;;
	darwin-*) got=skip; expect "$bin is a 64-bit Mach-O file" cffaedfe "$(head -c 4 "$bin" | od -An -tx1 | tr -d ' \n')" ;;
	esac
	[ "$got" = skip ] || expect "$t: drago version" "$(want_version "$os/$arch")" "$got"
done

# ---------------------------------------------------------------------------
section "2. ARM unit tests under qemu-user-static"
# These tests re-execute their own test binary (a child server or agent they
# kill -9): without binfmt_misc the kernel cannot exec an ARM binary from
# inside qemu-user, so they run natively only (make unit).
reexec='^(TestKill9AfterAcknowledgedWrite|TestBoltCrashDurability|TestAgentRotationCrash)$'
for arch in arm64 arm; do
	qemu=qemu-aarch64-static
	[ "$arch" = arm64 ] || qemu=qemu-arm-static
	log=$work/go-test-$arch.log
	if ! env -u DRAGO_PRIVILEGED_TESTS GOARCH=$arch GOARM=7 CGO_ENABLED=0 \
		"$GO" test -count=1 -exec "$qemu" -skip "$reexec" ./server/... ./agent/ >"$log" 2>&1; then
		cat "$log" >&2
		fail "go test for linux/$arch under $qemu failed: $(grep -E '^\s*--- FAIL' "$log" | xargs)
(a test that fails with 'exec format error' re-executes os.Args[0] and belongs in \$reexec)"
	fi
	grep -E '^(ok|---)' "$log" | sed "s/^/  linux\/$arch: /"
	n=$(grep -c '^ok' "$log")
	((n >= 5)) || fail "linux/$arch: only $n packages passed"
	ok
done

# ---------------------------------------------------------------------------
section "3. .deb and .rpm contents"
deb_files=(
	"-rwxr-xr-x root/root ./usr/bin/drago"
	"-rw-r--r-- root/root ./usr/lib/systemd/system/drago-server.service"
	"-rw-r--r-- root/root ./usr/lib/systemd/system/drago-agent.service"
	"drwxr-x--- root/drago ./etc/drago/"
	"-rw-r----- root/drago ./etc/drago/server.hcl"
	"-rw------- root/root ./etc/drago/agent.hcl"
	"drwx--x--x root/root ./var/lib/drago/"
	"drwx------ drago/drago ./var/lib/drago/server/"
	"drwx------ root/root ./var/lib/drago/agent/"
	"-rw-r--r-- root/root ./usr/share/bash-completion/completions/drago"
	"-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_drago"
	"-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/drago.fish"
	"-rw-r--r-- root/root ./usr/share/doc/drago/copyright"
)
rpm_files=(
	"|-rwxr-xr-x|root|root|/usr/bin/drago"
	"|-rw-r--r--|root|root|/usr/lib/systemd/system/drago-server.service"
	"|-rw-r--r--|root|root|/usr/lib/systemd/system/drago-agent.service"
	"|drwxr-x---|root|drago|/etc/drago"
	"cn|-rw-r-----|root|drago|/etc/drago/server.hcl"
	"cn|-rw-------|root|root|/etc/drago/agent.hcl"
	"|drwx--x--x|root|root|/var/lib/drago"
	"|drwx------|drago|drago|/var/lib/drago/server"
	"|drwx------|root|root|/var/lib/drago/agent"
	"|-rw-r--r--|root|root|/usr/share/bash-completion/completions/drago"
	"|-rw-r--r--|root|root|/usr/share/zsh/site-functions/_drago"
	"|-rw-r--r--|root|root|/usr/share/fish/vendor_completions.d/drago.fish"
	"l|-rw-r--r--|root|root|/usr/share/licenses/drago/LICENSE"
)
for a in amd64:amd64:x86_64:linux/amd64 arm64:arm64:aarch64:linux/arm64 armv7:armhf:armv7hl:linux/arm; do
	IFS=: read -r _ d r platform <<<"$a"
	deb=$DIST/pkg/drago_${PKG_VERSION}-1_$d.deb
	rpmf=$DIST/pkg/drago-${PKG_VERSION}-1.$r.rpm
	[ -f "$deb" ] || fail "$deb is missing"
	[ -f "$rpmf" ] || fail "$rpmf is missing"

	expect "$deb control" "drago $PKG_VERSION-1 $d" "$(dpkg-deb -f "$deb" Package Version Architecture | awk -F': ' '{printf "%s%s", sep, $2; sep=" "}')"
	list=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
	for f in "${deb_files[@]}"; do
		grep -qxF -- "$f" <<<"$list" || fail "$deb lacks [$f]:
$list"
		ok
	done
	expect "$deb conffiles" "/etc/drago/agent.hcl /etc/drago/server.hcl" \
		"$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | sort | xargs)"
	for s in preinst:preinstall postinst:postinstall prerm:preremove postrm:postremove; do
		dpkg-deb -I "$deb" "${s%%:*}" | cmp -s - "packaging/scripts/${s#*:}.sh" ||
			fail "$deb: ${s%%:*} is not packaging/scripts/${s#*:}.sh"
		ok
	done
	payload=$work/drago-$d
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/drago >"$payload"
	chmod +x "$payload"
	case $d in
	amd64) got=$("$payload" version) ;;
	arm64) got=$(qemu-aarch64-static "$payload" version) ;;
	armhf) got=$(qemu-arm-static -cpu cortex-a7 "$payload" version) ;;
	esac
	expect "$deb: /usr/bin/drago version" "$(want_version "$platform")" "$got"

	expect "$rpmf header" "drago $PKG_VERSION 1 $r" "$(rpm -qp --qf '%{NAME} %{VERSION} %{RELEASE} %{ARCH}' "$rpmf")"
	list=$(rpm -qp --qf '[%{FILEFLAGS:fflags}|%{FILEMODES:perms}|%{FILEUSERNAME}|%{FILEGROUPNAME}|%{FILENAMES}\n]' "$rpmf")
	for f in "${rpm_files[@]}"; do
		grep -qxF -- "$f" <<<"$list" || fail "$rpmf lacks [$f]:
$list"
		ok
	done
	expect "rpm -qlp $rpmf" "$(printf '%s\n' "${rpm_files[@]}" | cut -d'|' -f5 | sort)" \
		"$(rpm -qlp "$rpmf" | grep -Fxf <(printf '%s\n' "${rpm_files[@]}" | cut -d'|' -f5) | sort)"
	expect "rpm -qcp $rpmf" "/etc/drago/agent.hcl /etc/drago/server.hcl" "$(rpm -qcp "$rpmf" | sort | xargs)"
	expect "$rpmf scriptlets" "preinstall postinstall preuninstall postuninstall" \
		"$(rpm -qp --scripts "$rpmf" | awk '/ scriptlet /{print $1}' | xargs)"
done
bash -n "$DIST/completions/drago.bash" || fail "bash completion: syntax error"
zsh -n "$DIST/completions/_drago" || fail "zsh completion: syntax error"
fish --no-execute "$DIST/completions/drago.fish" || fail "fish completion: syntax error"
ok

# ---------------------------------------------------------------------------
section "4. apt: install, upgrade, purge"
case $(dpkg --print-architecture) in
amd64) host_arch=amd64 ;; arm64) host_arch=arm64 ;; armhf) host_arch=armv7 ;;
*) fail "no drago package for $(dpkg --print-architecture)" ;;
esac
repo=$work/repo
keyring=$work/drago-archive-keyring.gpg
cp -a "$DIST/apt" "$repo"
cp "$repo/drago-archive-keyring.gpg" "$keyring"
chmod -R a+rX "$repo" "$keyring"
echo "deb [signed-by=$keyring] file:$repo stable main" >"$apt_source"
# Only this source: no other repository is fetched, no other list removed.
apt_update() {
	out=$(apt-get update -o Dir::Etc::sourcelist="$apt_source" -o Dir::Etc::sourceparts=- \
		-o APT::Get::List-Cleanup=0 2>&1) || fail "apt-get update: $out"
	! grep -Eq '^(W|E):' <<<"$out" || fail "apt-get update warned (is the repository signed?): $out"
	ok
}
apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confdef \
		-o Dpkg::Options::=--force-confold "$@" >"$work/apt.log" 2>&1 || fail "apt-get install $*: $(cat "$work/apt.log")"
	ok
}
apt_update
expect "apt candidate" "$PKG_VERSION-1" "$(apt-cache policy drago | awk '/Candidate:/{print $2}')"
apt_install drago

# check_installed PKG-VERSION VERSION-PATTERN
check_installed() {
	expect "installed version" "install ok installed $1" "$(dpkg-query -W -f='${Status} ${Version}' drago)"
	expect_match "drago version" "^drago $2 \(commit [0-9a-z]+, built [0-9TZ:-]+, linux/$("$GO" env GOARCH)\)$" "$(drago version)"
	expect_mode /usr/bin/drago "755 root root"
	expect_mode /etc/drago "750 root drago"
	expect_mode /etc/drago/server.hcl "640 root drago"
	expect_mode /etc/drago/agent.hcl "600 root root"
	expect_mode /var/lib/drago "711 root root"
	expect_mode /var/lib/drago/server "700 drago drago"
	expect_mode /var/lib/drago/agent "700 root root"
	for f in /usr/lib/systemd/system/drago-server.service /usr/lib/systemd/system/drago-agent.service \
		/usr/share/bash-completion/completions/drago /usr/share/zsh/vendor-completions/_drago \
		/usr/share/fish/vendor_completions.d/drago.fish /usr/share/doc/drago/copyright; do
		expect_mode "$f" "644 root root"
	done
	expect "conffiles" "/etc/drago/agent.hcl /etc/drago/server.hcl" \
		"$(dpkg-query -W -f='${Conffiles}\n' drago | awk 'NF{print $1}' | sort | xargs)"
	IFS=: read -r _ _ uid _ _ home shell <<<"$(getent passwd drago)"
	((uid < 1000)) || fail "drago is not a system user (uid $uid)"
	expect "drago's home and shell" "/var/lib/drago/server /usr/sbin/nologin" "$home $shell"
	getent group drago >/dev/null || fail "no group drago"
	out=$(systemd-analyze verify /usr/lib/systemd/system/drago-server.service /usr/lib/systemd/system/drago-agent.service 2>&1) ||
		fail "systemd-analyze verify: $out"
	expect "systemd-analyze verify output" "" "$out"
	expect "units enabled by the package" "" "$(find /etc/systemd/system -path '*.wants/drago-*' 2>/dev/null)"
}
check_installed "$PKG_VERSION-1" "$version_re"

# The server runs as drago with the shipped config: it reads /etc/drago/server.hcl
# through the group and writes its state to /var/lib/drago/server.
setpriv --reuid=drago --regid=drago --init-groups -- \
	drago server -config /etc/drago/server.hcl -addr 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
	grep -q 'Created the root token' "$work/server.out" 2>/dev/null && break
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
expect "drago server as drago" "Created the root token in /var/lib/drago/server/root-token (readable by this user only)." \
	"$(head -1 "$work/server.out")"
kill -TERM "$server_pid"
wait "$server_pid" || fail "drago server exited with $? on SIGTERM: $(cat "$work/server.err")"
server_pid=
expect_mode /var/lib/drago/server/state.db "600 drago drago"
expect_mode /var/lib/drago/server/root-token "600 drago drago"

# The agent, unconfigured, refuses to start (exit 2) and touches nothing.
rc=0
drago agent -config /etc/drago/agent.hcl 2>"$work/agent.err" || rc=$?
expect "unconfigured agent's exit code" 2 "$rc"
expect_match "unconfigured agent's error" "Server: required" "$(cat "$work/agent.err")"
expect "files in /var/lib/drago/agent" "" "$(ls -A /var/lib/drago/agent)"

# Upgrade: a newer build whose agent.hcl changed upstream; both configs edited
# locally. Both edits stay; dpkg leaves the new agent.hcl beside as .dpkg-dist.
next=$work/next
mkdir -p "$next"
cp -a packaging/etc "$work/etc-next"
echo "# A line added upstream in the packages-test upgrade." >>"$work/etc-next/agent.hcl"
submake apt-repo DIST="$next" PKG_ARCHS="$host_arch" PKG_ETC="$work/etc-next" \
	VERSION="$VERSION-next" PKG_VERSION="$PKG_VERSION+next" APT_GNUPGHOME="$DIST/apt-gnupg" >"$work/make-next.log" 2>&1 ||
	fail "building the upgrade: $(tail -20 "$work/make-next.log")"
echo "# Local edit, kept across upgrades." >>/etc/drago/agent.hcl
sed -i 's/^log_level = "info"/log_level = "debug"/' /etc/drago/server.hcl
rm -rf "$repo"
cp -a "$next/apt" "$repo"
chmod -R a+rX "$repo"
apt_update
apt_install drago
check_installed "$PKG_VERSION+next-1" "$version_re-next"
expect "agent.hcl after the upgrade" "# Local edit, kept across upgrades." "$(tail -1 /etc/drago/agent.hcl)"
expect "agent.hcl.dpkg-dist" "# A line added upstream in the packages-test upgrade." "$(tail -1 /etc/drago/agent.hcl.dpkg-dist)"
expect_match "server.hcl after the upgrade" '^log_level = "debug"$' "$(cat /etc/drago/server.hcl)"
expect_absent /etc/drago/server.hcl.dpkg-dist /etc/drago/server.hcl.dpkg-new
expect_mode /var/lib/drago/server/state.db "600 drago drago"

DEBIAN_FRONTEND=noninteractive apt-get purge -y -q drago >"$work/apt.log" 2>&1 || fail "apt-get purge: $(cat "$work/apt.log")"
expect "status after purge" "" "$(dpkg-query -W -f='${Status}' drago 2>/dev/null | grep -v not-installed || true)"
expect_absent /usr/bin/drago /etc/drago /var/lib/drago /usr/lib/systemd/system/drago-server.service \
	/usr/lib/systemd/system/drago-agent.service /usr/share/bash-completion/completions/drago \
	/usr/share/zsh/vendor-completions/_drago /usr/share/fish/vendor_completions.d/drago.fish /usr/share/doc/drago
getent passwd drago >/dev/null || fail "purge removed the user drago (it keeps it, as Debian advises)"
ok
rm -f "$apt_source"
find /var/lib/apt/lists -maxdepth 1 -name "*${work##*/}*" -delete
expect "apt candidate after removing the source" "" "$(apt-cache policy drago 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')"

# ---------------------------------------------------------------------------
section "5. dpkg -i with a simulated systemd and with SysV init"
# In a private mount namespace: a tmpfs /run with /run/systemd/system (what
# the scripts test for) and a systemctl that logs its arguments and fails, as
# on a machine where systemd does not answer. Then again without systemd and
# with a SysV script for drago-agent that reports it runs.
mkdir -p "$work/fakebin" "$work/initd"
cat >"$work/fakebin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$work/systemctl.log"
echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2
exit 1
EOF
cat >"$work/initd/drago-agent" <<EOF
#!/bin/sh
echo "\$1" >>"$work/sysv.log"
EOF
chmod +x "$work/fakebin/systemctl" "$work/initd/drago-agent"
: >"$work/systemctl.log"
: >"$work/sysv.log"
v1_deb=$DIST/pkg/drago_${PKG_VERSION}-1_$(dpkg --print-architecture).deb
v2_deb=$(echo "$next"/pkg/*.deb)
# with_systemd CMD...: run CMD with /run/systemd/system present and the fake systemctl.
with_systemd() {
	unshare --mount --propagation private -- sh -c \
		'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/systemd/system && exec "$@"' \
		sh env PATH="$work/fakebin:$PATH" "$@" >>"$work/dpkg.log" 2>&1 || fail "$* (simulated systemd): $(tail -20 "$work/dpkg.log")"
	ok
}
# with_sysv CMD...: run CMD without systemd, with the SysV script in /etc/init.d.
with_sysv() {
	unshare --mount --propagation private -- sh -c \
		'mount -t tmpfs -o mode=0755 tmpfs /run && mount --bind "$0" /etc/init.d && exec "$@"' \
		"$work/initd" "$@" >>"$work/dpkg.log" 2>&1 || fail "$* (SysV): $(tail -20 "$work/dpkg.log")"
	ok
}
with_systemd dpkg -i "$v1_deb"
expect "systemctl calls of a first install" "daemon-reload" "$(xargs -d '\n' <"$work/systemctl.log")"
with_systemd dpkg -i "$v2_deb"
with_systemd dpkg --remove drago
# remove keeps the config files (and any state); purge deletes them.
expect_mode /etc/drago/agent.hcl "600 root root"
expect_absent /usr/bin/drago
with_systemd dpkg --purge drago
expect_absent /etc/drago /var/lib/drago /usr/bin/drago
expect "systemctl calls of install, upgrade, remove, purge" \
	"daemon-reload|daemon-reload|try-restart drago-server.service drago-agent.service|disable --now drago-server.service drago-agent.service|daemon-reload|daemon-reload" \
	"$(paste -sd'|' "$work/systemctl.log")"
with_sysv dpkg -i "$v1_deb"
with_sysv dpkg -i "$v2_deb"
with_sysv dpkg --purge drago
expect "SysV script calls of install, upgrade, purge" "status|restart|stop" "$(paste -sd'|' "$work/sysv.log")"
expect_absent /etc/drago /var/lib/drago /usr/bin/drago

# ---------------------------------------------------------------------------
section "6. MSI"
standin=$work/wireguard-STAND-IN-not-the-wireguard-nt-driver.dll
echo "STAND-IN for wireguard.dll, made by packaging/test/packages-test.sh: NOT the wireguard-nt driver." >"$standin"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Drago packages-test throwaway code signing" \
	-addext extendedKeyUsage=codeSigning -keyout "$work/sign.key" -out "$work/sign.crt" 2>/dev/null
IFS=. read -r ma mi pa <<<"$MSI_VERSION"
msi_v2=$ma.$mi.$((pa + 1))
rc=0
submake msi DIST="$DIST" MSI_DIR="$work/msi0" WIREGUARD_DLL= >"$work/msi0.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q 'set WIREGUARD_DLL' "$work/msi0.log" || fail "make msi without WIREGUARD_DLL must refuse: $(cat "$work/msi0.log")"
ok
submake msi DIST="$DIST" MSI_DIR="$work/msi1" VERSION="$VERSION" COMMIT="$COMMIT" DATE="$DATE" PKG_VERSION="$PKG_VERSION" \
	MSI_VERSION="$MSI_VERSION" WIREGUARD_DLL="$standin" SIGN_CERT="$work/sign.crt" SIGN_KEY="$work/sign.key" \
	>"$work/msi1.log" 2>&1 || fail "make msi: $(cat "$work/msi1.log")"
grep -q 'WARNING: .*not a Windows DLL' "$work/msi1.log" || fail "make msi did not warn about the stand-in DLL"
ok
submake msi DIST="$next" MSI_DIR="$work/msi2" VERSION="$VERSION-next" PKG_VERSION="$PKG_VERSION+next" \
	MSI_VERSION="$msi_v2" WIREGUARD_DLL="$standin" >"$work/msi2.log" 2>&1 || fail "make msi (upgrade): $(cat "$work/msi2.log")"
msi1=$work/msi1/drago-$PKG_VERSION-x64.msi
msi2=$work/msi2/drago-$PKG_VERSION+next-x64.msi
[ -f "$msi1" ] && [ -f "$msi2" ] || fail "MSIs missing: $(ls "$work/msi1" "$work/msi2")"

table() { msiinfo export "$1" "$2" | tail -n +4 | tr -d '\r' | sort; }
expect_match "MSI platform" '^Template: x64;1033$' "$(msiinfo suminfo "$msi1")"
expect "File table" "AgentConfig|agent.hcl DragoExe|drago.exe License|LICENSE.txt WireGuardDll|wireguard.dll" \
	"$(table "$msi1" File | awk -F'\t' '{print $1 "|" $3}' | xargs)"
expect "Component table (64-bit; agent.hcl also Permanent and NeverOverwrite)" \
	"AgentConfig|DATADIR|400 DragoExe|INSTALLDIR|256 License|INSTALLDIR|256 WireGuardDll|INSTALLDIR|256" \
	"$(table "$msi1" Component | awk -F'\t' '{print $1 "|" $3 "|" $4}' | xargs)"
expect "Directory table" "DATADIR|CommonAppDataFolder|Drago INSTALLDIR|ProgramFiles64Folder|Drago" \
	"$(table "$msi1" Directory | awk -F'\t' '$1 == "DATADIR" || $1 == "INSTALLDIR" {print $1 "|" $2 "|" $3}' | xargs)"
expect "ServiceInstall table" \
	'drago-agent|16|2|1|LocalSystem|agent -config "[CommonAppDataFolder]Drago\agent.hcl"|DragoExe' \
	"$(table "$msi1" ServiceInstall | awk -F'\t' '{print $2 "|" $4 "|" $5 "|" $6 "|" $9 "|" $11 "|" $12}')"
# Event 162: stop on install and uninstall, delete on uninstall; no start.
expect "ServiceControl table" "drago-agent|162|DragoExe" \
	"$(table "$msi1" ServiceControl | awk -F'\t' '{print $2 "|" $3 "|" $6}')"
expect "Environment table" '=-*PATH|[~];[INSTALLDIR]|DragoExe' \
	"$(table "$msi1" Environment | awk -F'\t' '{print $2 "|" $3 "|" $4}')"
code='{9F65310B-CD43-46ED-AB4D-D4E8594F9B33}'
# Downgrades detected (and refused); upgrades from any version up to this one
# included (513: migrate features + maximum inclusive).
expect "Upgrade table" "WIX_DOWNGRADE_DETECTED|$code|$MSI_VERSION||2 WIX_UPGRADE_DETECTED|$code||$MSI_VERSION|513" \
	"$(table "$msi1" Upgrade | awk -F'\t' '{print $7 "|" $1 "|" $2 "|" $3 "|" $5}' | sort | xargs)"
for m in "$msi1" "$msi2"; do
	expect "UpgradeCode of $m" "$code" "$(table "$m" Property | awk -F'\t' '$1 == "UpgradeCode" {print toupper($2)}')"
done
[ "$(table "$msi1" Property | grep ProductCode)" != "$(table "$msi2" Property | grep ProductCode)" ] || fail "two builds share a ProductCode"
ok
mkdir -p "$work/msi1/x"
(cd "$work/msi1/x" && msiextract "$msi1" >/dev/null)
cmp -s "$work/msi1/x/Drago/wireguard.dll" "$standin" || fail "the MSI's wireguard.dll is not the given file"
ok
grep -q $'\r$' "$work/msi1/x/Drago/agent.hcl" || fail "agent.hcl in the MSI lacks CRLF line ends"
ok
for f in "$msi1" "$work/msi1/x/Drago/drago.exe"; do
	out=$(osslsigncode verify -CAfile "$work/sign.crt" -in "$f" 2>&1) || fail "osslsigncode verify $f: $out"
	expect_match "signature of ${f##*/}" '^Succeeded$' "$out"
done
out=$(osslsigncode verify -CAfile "$work/sign.crt" -in "$msi2" 2>&1) && fail "the MSI built without SIGN_CERT is signed: $out"
ok

# Under Wine: install, upgrade in place, refuse a downgrade, uninstall.
c=$WINEPREFIX/drive_c
msiexec() { wine msiexec "$@" /qn >>"$work/wine.log" 2>&1; }
regq() { winrun reg query "$@" 2>/dev/null || true; }
products() { regq 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | grep -cE '^\s+DisplayName\s+REG_SZ\s+Drago$' || true; }
msiexec /i "Z:$msi1" || fail "msiexec /i $msi1 failed: $(tail -20 "$work/wine.log")"
ok
for f in "Program Files/Drago/drago.exe" "Program Files/Drago/wireguard.dll" "Program Files/Drago/LICENSE.txt" "ProgramData/Drago/agent.hcl"; do
	[ -f "$c/$f" ] || fail "MSI install: C:/$f is missing"
	ok
done
svc=$(regq 'HKLM\System\CurrentControlSet\Services\drago-agent')
expect_match "service drago-agent command" 'ImagePath +REG_SZ +.*\\Drago\\drago\.exe"? agent -config "C:\\ProgramData\\Drago\\agent\.hcl"$' "$svc"
expect_match "service drago-agent start type (automatic)" 'Start +REG_DWORD +0x2$' "$svc"
expect_match "event log source" 'EventMessageFile +REG_SZ +.*EventCreate\.exe$' \
	"$(regq 'HKLM\System\CurrentControlSet\Services\EventLog\Application\drago-agent')"
path_reg() { regq 'HKLM\System\CurrentControlSet\Control\Session Manager\Environment' /v PATH; }
expect_match "system PATH" ';C:\\Program Files\\Drago\\$' "$(path_reg)"
expect "drago version through PATH" "$(want_version windows/amd64)" "$(winrun cmd /c drago version)"
expect "installed products" 1 "$(products)"
printf '# Local edit, kept across upgrades.\r\n' >>"$c/ProgramData/Drago/agent.hcl"

msiexec /i "Z:$msi2" || fail "msiexec /i $msi2 (upgrade) failed: $(tail -20 "$work/wine.log")"
ok
expect "installed products after the upgrade" 1 "$(products)"
expect "Drago entries in PATH after the upgrade" 1 "$(path_reg | grep -o 'C:\\Program Files\\Drago\\' | wc -l)"
# Run by its path: Wine's msiexec leaves an empty element (;;) where it took
# the old entry out of PATH, and Wine's cmd stops its PATH search there.
expect_match "drago version after the upgrade" "^drago $version_re-next " "$(winrun "$c/Program Files/Drago/drago.exe" version)"
expect "agent.hcl after the upgrade" "# Local edit, kept across upgrades." "$(tail -1 "$c/ProgramData/Drago/agent.hcl" | tr -d '\r')"
msiexec /i "Z:$msi1" && fail "msiexec installed the older $msi1 over the newer one"
ok
expect_match "drago version after the refused downgrade" "^drago $version_re-next " "$(winrun "$c/Program Files/Drago/drago.exe" version)"

msiexec /x "Z:$msi2" || fail "msiexec /x failed: $(tail -20 "$work/wine.log")"
ok
expect_absent "$c/Program Files/Drago"
! grep -q ImagePath <<<"$(regq 'HKLM\System\CurrentControlSet\Services\drago-agent')" || fail "uninstall left the service drago-agent"
ok
! grep -q 'Drago' <<<"$(path_reg)" || fail "uninstall left Drago in PATH: $(path_reg)"
ok
expect "installed products after uninstall" 0 "$(products)"
[ -f "$c/ProgramData/Drago/agent.hcl" ] || fail "uninstall removed C:/ProgramData/Drago/agent.hcl"
ok
