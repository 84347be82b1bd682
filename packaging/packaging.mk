# Cross builds and packages, included by the root Makefile (paths are relative
# to the repository root; LDFLAGS, VERSION and GO come from there).
#
#   make cross          static binaries (CGO off, dashboard embedded, version
#                       stamped) for every platform: $(DIST)/bin/drago-OS-ARCH[.exe]
#   make packages       .deb and .rpm for amd64, arm64 and armhf: $(DIST)/pkg
#   make apt-repo       a signed APT repository of the .deb files: $(DIST)/apt
#   make msi WIREGUARD_DLL=path/to/wireguard.dll [SIGN_CERT=c.pem SIGN_KEY=k.pem]
#                       Windows x64 installer: $(DIST)/msi
#   make packages-test  builds all of the above and runs packaging/test/packages-test.sh
#                       (as root: installs, upgrades and purges the package here)
#
# Variables: DIST (output folder, default dist), PKG_VERSION (package version,
# from VERSION), PKG_ARCHS (default: amd64 arm64 armv7), PKG_ETC (the shipped
# server.hcl and agent.hcl, default packaging/etc), MSI_VERSION (numeric a.b.c,
# from PKG_VERSION), MSI_DIR (default $(DIST)/msi), APT_GNUPGHOME / APT_KEY_ID
# (the repository's signing key; default: a throwaway key made once in
# $(DIST)/apt-gnupg).

DIST          ?= dist
CROSS_TARGETS := linux-amd64 linux-arm64 linux-armv6 linux-armv7 \
                 windows-amd64 windows-arm64 darwin-amd64 darwin-arm64
CROSS_BINS    := $(foreach t,$(CROSS_TARGETS),$(DIST)/bin/drago-$(t)$(if $(filter windows-%,$(t)),.exe))
PKG_ARCHS     ?= amd64 arm64 armv7
PKG_ETC       ?= packaging/etc
HOST_TARGET   := $(shell $(GO) env GOHOSTOS)-$(shell $(GO) env GOHOSTARCH)

# The version, commit and date that LDFLAGS stamps. (VERSION, COMMIT and DATE
# are recursive variables: each use would run git and date again.)
ldflags_x      = $(patsubst github.com/drago-wg/drago/server/api.$(1)=%,%,$(filter github.com/drago-wg/drago/server/api.$(1)=%,$(LDFLAGS)))
STAMP_VERSION := $(call ldflags_x,Version)
STAMP_COMMIT  := $(call ldflags_x,Commit)
STAMP_DATE    := $(call ldflags_x,Date)

# Package version: the version without a leading v and with '-' read as '+'
# (git describe's v1.2.0-3-gabc1234 is 1.2.0+3+gabc1234, after 1.2.0); a
# version that is no version number (an untagged commit) is
# 0.0.0~gitVERSION, before any release.
ifeq ($(origin PKG_VERSION),undefined)
PKG_VERSION   := $(shell echo '$(STAMP_VERSION)' | sed -E '/^v?[0-9]+\.[0-9]+/!s/^/0.0.0~git/; s/^v//; s/-/+/g')
endif
# Windows Installer versions are numeric; MajorUpgrade compares a.b.c.
ifeq ($(origin MSI_VERSION),undefined)
MSI_VERSION   := $(or $(shell echo '$(PKG_VERSION)' | sed -nE 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/p'),0.0.0)
endif

NFPM_VERSION  := v2.45.2
# make for the package test. (A recipe that names $(MAKE) runs even under make -n.)
SUBMAKE       := $(MAKE)
NFPM          := bin/tools/nfpm-$(NFPM_VERSION)/nfpm

MSI_DIR       ?= $(DIST)/msi
APT_GNUPGHOME ?= $(DIST)/apt-gnupg
APT_KEY_ID    ?=
WIREGUARD_DLL ?=
SIGN_CERT     ?=
SIGN_KEY      ?=

.PHONY: cross packages apt-repo msi packages-test FORCE
FORCE:

cross: $(CROSS_BINS)

# drago-OS-ARCH[.exe]; ARCH armv6/armv7 is GOARCH=arm with GOARM=6/7. Always
# handed to go build, whose cache makes an unchanged build quick.
$(DIST)/bin/drago-%: FORCE webapp
	@mkdir -p $(@D)
	@t='$*'; t=$${t%.exe}; os=$${t%%-*}; arch=$${t#*-}; arm=; \
	case $$arch in armv6|armv7) arm=$${arch#armv}; arch=arm;; esac; \
	echo "go build $$os/$$arch$${arm:+ GOARM=$$arm} -> $@"; \
	GOOS=$$os GOARCH=$$arch GOARM=$$arm CGO_ENABLED=0 \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/drago

# Completion scripts, printed by the binary built for this machine.
$(DIST)/completions/drago.bash: $(DIST)/bin/drago-$(HOST_TARGET)
	@mkdir -p $(@D)
	$< completion bash > $(@D)/drago.bash
	$< completion zsh > $(@D)/_drago
	$< completion fish > $(@D)/drago.fish

$(NFPM):
	GOBIN=$(abspath $(@D)) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

packages: $(foreach a,$(PKG_ARCHS),$(DIST)/bin/drago-linux-$(a)) $(DIST)/completions/drago.bash $(NFPM)
	@mkdir -p $(DIST)/pkg
	@set -e; for a in $(PKG_ARCHS); do \
		case $$a in amd64) n=amd64 d=amd64 r=x86_64;; arm64) n=arm64 d=arm64 r=aarch64;; \
		            armv7) n=arm7 d=armhf r=armv7hl;; *) echo "packages: no package for $$a" >&2; exit 1;; esac; \
		rm -f $(DIST)/pkg/drago_*_$$d.deb $(DIST)/pkg/drago-*.$$r.rpm; \
		for p in deb rpm; do \
			NFPM_ARCH=$$n PKG_VERSION='$(PKG_VERSION)' DRAGO_BIN=$(DIST)/bin/drago-linux-$$a \
			DRAGO_COMPLETIONS=$(DIST)/completions DRAGO_ETC='$(PKG_ETC)' $(NFPM) package -f nfpm.yaml -p $$p -t $(DIST)/pkg/; \
		done; \
	done

apt-repo: packages
	DIST='$(DIST)' APT_GNUPGHOME='$(APT_GNUPGHOME)' APT_KEY_ID='$(APT_KEY_ID)' bash packaging/apt-repo.sh

msi: $(DIST)/bin/drago-windows-amd64.exe
	DIST='$(DIST)' MSI_DIR='$(MSI_DIR)' MSI_VERSION='$(MSI_VERSION)' PKG_VERSION='$(PKG_VERSION)' WIREGUARD_DLL='$(WIREGUARD_DLL)' \
	SIGN_CERT='$(SIGN_CERT)' SIGN_KEY='$(SIGN_KEY)' bash packaging/windows/build-msi.sh

# The package tests (root): checks what cross, packages and apt-repo built,
# builds the MSIs and an upgrade itself (see the script's head).
packages-test: cross packages apt-repo
	GO='$(GO)' MAKE='$(SUBMAKE)' DIST='$(DIST)' VERSION='$(STAMP_VERSION)' COMMIT='$(STAMP_COMMIT)' DATE='$(STAMP_DATE)' \
	PKG_VERSION='$(PKG_VERSION)' MSI_VERSION='$(MSI_VERSION)' bash packaging/test/packages-test.sh
