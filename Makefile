# Drago build, test and packaging entry points. `make test` installs what the
# tests need on a fresh Debian machine (apt packages, npm packages, Go
# modules) and runs every suite, the privileged end-to-end ones included.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X github.com/drago-wg/drago/server/api.Version=$(VERSION) \
            -X github.com/drago-wg/drago/server/api.Commit=$(COMMIT) \
            -X github.com/drago-wg/drago/server/api.Date=$(DATE)
export CGO_ENABLED ?= 0

.PHONY: all build run deps test unit e2e vet clean
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

vet:
	$(GO) vet ./...

# unit: every Go package with the race detector, then the end-to-end suite
# (real processes in network namespaces) on its own so that its timings do
# not share the CPU with the rest. Privileged tests run for real.
E2E_PKGS := ./agent/e2e/
unit:
	DRAGO_PRIVILEGED_TESTS=1 CGO_ENABLED=1 $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	DRAGO_PRIVILEGED_TESTS=1 $(GO) test -count=1 -v $(E2E_PKGS)

test: deps vet unit webapp-test packages-test

clean:
	rm -rf bin dist

include webapp/webapp.mk
include packaging/packaging.mk
