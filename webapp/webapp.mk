# Dashboard build and tests, included by the root Makefile. Paths are relative
# to the repository root (make is not assumed to run with -C webapp).
#
#   make webapp        npm ci (when package-lock.json changed) + type check + vite build
#                      into webapp/ui/dist, which embed.go embeds on the next go build
#   make webapp-unit   Vitest unit and component tests (mocked fetch, happy-dom)
#   make webapp-e2e    browser tests: Debian chromium via playwright-core against a
#                      real `drago server -dev` built with the dashboard embedded
#                      (dashboard.test.mjs, and policy.test.mjs: access policies,
#                      with a 2,000-host network; counters.test.mjs: two real agents in
#                      network namespaces (root) across a server restart;
#                      cluster.test.mjs: three etcd members and two servers;
#                      fleet.test.mjs runs by hand)
#   make webapp-test   all of the above
#   make webapp-clean  remove node_modules and the build output
#
# src/api/types.ts is generated from the Go wire types in server/api by
# `go generate ./webapp` (webapp/tsgen); `go test ./webapp` fails when it is stale.

WEBAPP_DIR   := webapp
WEBAPP_STAMP := $(WEBAPP_DIR)/node_modules/.drago-npm-ci
WEBAPP_SRC   := $(shell find $(WEBAPP_DIR)/src $(WEBAPP_DIR)/public -type f 2>/dev/null) \
                $(WEBAPP_DIR)/index.html $(WEBAPP_DIR)/vite.config.ts $(WEBAPP_DIR)/tsconfig.json

.PHONY: webapp webapp-unit webapp-e2e webapp-test webapp-clean

$(WEBAPP_STAMP): $(WEBAPP_DIR)/package.json $(WEBAPP_DIR)/package-lock.json
	cd $(WEBAPP_DIR) && npm ci --no-audit --no-fund
	touch $@

$(WEBAPP_DIR)/ui/dist/index.html: $(WEBAPP_STAMP) $(WEBAPP_SRC)
	cd $(WEBAPP_DIR) && npm run --silent build

webapp: $(WEBAPP_DIR)/ui/dist/index.html

webapp-unit: $(WEBAPP_STAMP)
	cd $(WEBAPP_DIR) && npx vitest run

webapp-e2e: webapp
	cd $(WEBAPP_DIR) && node --test --test-concurrency=1 e2e/dashboard.test.mjs e2e/policy.test.mjs e2e/counters.test.mjs e2e/cluster.test.mjs

webapp-test: webapp webapp-unit webapp-e2e

webapp-clean:
	rm -rf $(WEBAPP_DIR)/node_modules $(WEBAPP_DIR)/ui/dist
