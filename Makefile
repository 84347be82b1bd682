# Drago build, test and packaging entry points. `make test` installs what the
# tests need on a fresh Debian machine (apt packages, npm packages, Go
# modules) and runs every suite, the privileged end-to-end ones included.

GO       ?= go
# The toolchain that builds and tests Drago: the go1.26.8 on these machines
# has standard-library vulnerabilities that Drago's code reaches (fixed in
# 1.26.9 and 1.26.10; make vulncheck). The go command fetches this one from
# the module proxy once; GOTOOLCHAIN=local uses the installed Go instead.
export GOTOOLCHAIN ?= go1.26.11
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X github.com/drago-wg/drago/server/api.Version=$(VERSION) \
            -X github.com/drago-wg/drago/server/api.Commit=$(COMMIT) \
            -X github.com/drago-wg/drago/server/api.Date=$(DATE)
export CGO_ENABLED ?= 0

.PHONY: all build run deps test unit fuzz e2e vet vet-cross tidy-check vulncheck clean
all: build

# build embeds the dashboard (make webapp: npm ci + vite build); a plain
# `go build ./cmd/drago` works without Node and serves a placeholder page.
build: webapp
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/drago ./cmd/drago

# Start the control plane on a temporary data dir; prints a root token.
run: build
	./bin/drago server -dev

# Install the machine packages the tests use (idempotent; needs root).
deps:
	bash .ci/deps.sh

# vet also fails on files gofmt would change.
vet:
	@f=$$(gofmt -l $$(git ls-files '*.go')) && [ -z "$$f" ] || { echo "$$f"; echo "vet: not gofmt-ed" >&2; exit 1; }
	$(GO) vet ./...

# vet-cross vets the other release targets, test files included (tailscale
# runs GOOS=windows go vet/test in CI): a file that builds only on Linux must
# say so with a build constraint.
VET_TARGETS := windows/amd64 darwin/amd64 linux/arm64 linux/arm
vet-cross:
	@set -e; for t in $(VET_TARGETS); do \
		echo "go vet ./... GOOS=$${t%/*} GOARCH=$${t#*/}"; \
		CGO_ENABLED=0 GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./...; \
	done

# tidy-check fails when go.mod or go.sum differ from what go mod tidy writes.
tidy-check:
	@d=$$($(GO) mod tidy -diff) && [ -z "$$d" ] || { \
		echo "$$d"; echo "tidy-check: go.mod/go.sum are not tidy; run go mod tidy" >&2; exit 1; }

# vulncheck fails on any vulnerability reachable from Drago's code, for the
# Linux and Windows builds. The database is vuln.go.dev when it answers, else
# an offline copy built from the module proxy (.ci/vulndb.sh; docs/security.md).
GOVULNCHECK_VERSION := v1.10.0
VULNCHECK_GOOS      := linux windows
vulncheck:
	GOBIN=$(CURDIR)/bin/tools $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@db=$$(bash .ci/vulndb.sh) && set -e && for os in $(VULNCHECK_GOOS); do \
		echo "govulncheck -db $$db ./... GOOS=$$os"; \
		GOOS=$$os bin/tools/govulncheck -db "$$db" ./...; \
	done

# unit: every Go package with the race detector, then the end-to-end suite
# (real processes in network namespaces) on its own so that its timings do
# not share the CPU with the rest. Privileged tests run for real.
E2E_PKGS := ./agent/e2e/
unit:
	DRAGO_PRIVILEGED_TESTS=1 CGO_ENABLED=1 $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	DRAGO_PRIVILEGED_TESTS=1 $(GO) test -count=1 -v $(E2E_PKGS)

# fuzz runs every fuzz target (func FuzzXxx in a _test.go file) for
# FUZZTIME after its seed corpus, which plain go test already runs as unit
# tests. go test fuzzes one target at a time; minimizing is left out, as it
# would take the short runs' time, and a failing input is still written to
# the package's testdata/fuzz for go test to replay.
FUZZTIME ?= 8s
fuzz:
	@set -e; for d in $$(grep -l '^func Fuzz' $$(find . -name '*_test.go' -not -path './webapp/*') | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$d/*_test.go | cut -c6-); do \
			echo "go test $$d -fuzz $$f -fuzztime $(FUZZTIME)"; \
			$(GO) test $$d -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0; \
		done; \
	done

test: deps tidy-check vet vet-cross vulncheck unit fuzz webapp-test packages-test

clean:
	rm -rf bin dist

include webapp/webapp.mk
include packaging/packaging.mk
