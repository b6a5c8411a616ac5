# pgstack Makefile. Every target works on a clean clone with only Go (and
# kubectl for install/deploy): tools and test binaries are built from Go
# modules into the git-ignored bin/, once, and reused.

IMG ?= pgstack/manager:dev
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Tool versions. Binaries land in versioned paths, so a bump rebuilds and
# an unchanged version never does.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# v5.8.3 needs Go 1.27; v5.8.2 is the newest that builds with the Go in go.mod,
# and config/config_test.go uses its kustomize/api (v0.21.2) to build the overlays.
KUSTOMIZE_VERSION ?= v5.8.2
# The wrapper modules under hack/ pin the versions; read them from there.
KUBE_VERSION := $(shell sed -n 's|.*k8s.io/kubernetes \(v[0-9.]*\).*|\1|p' hack/kube/go.mod | head -1)
ETCD_VERSION := $(shell sed -n 's|.*go.etcd.io/etcd/server/v3 \(v[0-9.]*\).*|\1|p' hack/kube/go.mod | head -1)

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
KUBE_ASSETS ?= $(LOCALBIN)/k8s/$(KUBE_VERSION)-etcd$(ETCD_VERSION)
KUBE_APISERVER ?= $(KUBE_ASSETS)/kube-apiserver
KUBE_CONTROLLER_MANAGER ?= $(KUBE_ASSETS)/kube-controller-manager
KUBE_SCHEDULER ?= $(KUBE_ASSETS)/kube-scheduler
ETCD ?= $(KUBE_ASSETS)/etcd

KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
# Binaries built for the local cluster carry no symbol table or DWARF (-s -w):
# nobody debugs them here, and linking a 100 MB binary without them is faster.
TOOL_LDFLAGS := -s -w
KUBE_LDFLAGS := $(TOOL_LDFLAGS) -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean
# The environment of those builds: the compiler collects garbage less often
# (memory is cheaper than a cold build's CPU; GOMEMLIMIT caps each compile).
# Nothing that enters Go's build cache keys changes (flags, CGO_CFLAGS), so
# packages hack/kube shares with pgstack's own build (k8s.io/api,
# apimachinery, client-go at the same versions: keep them aligned) are
# compiled once. Only these builds see it, never the suites.
TOOL_BUILD_ENV := GOGC=400 GOMEMLIMIT=3GiB
# Every package the demo and the benchmark compile (the manager, the demo's own
# program and what it builds, the three groups) is compiled without DWARF: about 7% less compile
# CPU on a cold build, and the same flag everywhere keeps the packages the
# builds share compiled once (flags are part of Go's cache key). Panics still
# print symbolised stacks (those come from the pclntab, not DWARF). The suites
# run with Go's defaults.
# It goes through GOFLAGS, so the go builds the demo's own program runs (the
# podexec stand-in, at cluster start) take it too.
LOCAL_GOFLAGS := GOFLAGS="$(strip $(GOFLAGS) -gcflags=all=-dwarf=false)"

# Tests find the API server and etcd here (controller-runtime's envtest reads it).
export KUBEBUILDER_ASSETS := $(KUBE_ASSETS)

# PGO's real CRDs, read in place beside the repository (never copied into it).
export PGO_CRDS_DIR ?= $(abspath $(CURDIR)/../shared/pgo/v5.8.9/crds)

GO_TEST_FLAGS ?= -count=1 -timeout 20m
# How long `make test-fuzz` fuzzes the renderer: a count of inputs, not a
# duration. With a duration, Go 1.26's fuzzing coordinator can report its own
# deadline as a failure (`context deadline exceeded`, no failing input;
# golang/go#75804, fixed in Go 1.27): it failed a clean-clone CI run here. On
# 2 cores 20,000 inputs take 5-20 s.
FUZZTIME ?= 20000x

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

.PHONY: vet
vet: ## go vet every module.
	go vet ./...

.PHONY: tidy
tidy: ## go mod tidy the main module and the wrapper modules under hack/.
	go mod tidy
	for d in hack/*/; do (cd $$d && go mod tidy); done

.PHONY: verify
verify: manifests generate bundle fmt vet tidy ## Regenerate, format, vet and tidy; fail if anything changed.
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "verify: the tree changed after regenerating; commit the result:"; \
		git status --porcelain; git --no-pager diff --stat; exit 1; \
	fi

.PHONY: test
test: manifests generate cluster-bins ## Run every suite against a real kube-apiserver and etcd (and the full local cluster).
	@if [ -f "$(PGO_CRDS_DIR)/postgres-operator.crunchydata.com_postgresclusters.yaml" ]; then \
		echo ">> PostgresCluster schema: PGO's real CRDs from $(PGO_CRDS_DIR)"; \
	else \
		echo ">> PostgresCluster schema: pgstack's own (test/crds/pgo-fallback); PGO's CRDs not found in $(PGO_CRDS_DIR)"; \
	fi
	go test $(GO_TEST_FLAGS) -skip '^$(ROLLOUT_SCENARIO)$$' $$(go list ./... | grep -v '/test/reliability$$')
	go test $(GO_TEST_FLAGS) -run '^$(ROLLOUT_SCENARIO)$$' ./test/e2e/

# The staged-rollout scenario runs on a cluster of its own, from PGO 5.8.8
# with PGO's real 5.8.9 release published: after the other e2e scenarios the
# operator is past 5.9 and OLM cannot go back.
ROLLOUT_SCENARIO := TestOperatorUpgradesRollOutInWaves

# Issue 8's suite on the full local cluster: the manager binary SIGKILLed at
# random points (RELIABILITY_SEED replays a run), API server and OLM restarts,
# conflicting writers, bad input. It builds the manager itself. `make test`
# leaves it out, since CI runs it right after.
.PHONY: test-reliability
test-reliability: cluster-bins ## Crash, restart, conflict and bad-input suite against the manager process on the full local cluster.
	go test -count=1 -v -timeout 15m ./test/reliability/

.PHONY: test-fuzz
test-fuzz: ## Fuzz the PostgresCluster renderer for FUZZTIME (default 20000x, inputs); a failing input lands in internal/render/testdata/fuzz.
	go test -run '^FuzzRender$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) ./internal/render

.PHONY: test-bins
test-bins: $(KUBE_APISERVER) $(ETCD) ## Build the test API server and etcd (only when missing).

##@ Build

.PHONY: build
build: manifests generate manager-bin ## Regenerate, then build the manager binary.

# The manager from the tree as it is: the generated CRD, RBAC and deepcopy
# files are committed and `make verify` keeps them current, so the demo and
# the benchmark need no controller-gen (a cold build of it is two minutes).
.PHONY: manager-bin
manager-bin: | $(LOCALBIN)
	$(LOCAL_GOFLAGS) go build -o $(LOCALBIN)/manager .

.PHONY: run
run: manifests generate ## Run the manager against the current kube context.
	go run . manager

.PHONY: demo
demo: manager-bin cluster-bins ## Show pgstack installing PGO through real OLM on a local cluster (DEMO_EXIT=1 to exit when Ready).
	$(LOCAL_GOFLAGS) go run ./test/demo -manager $(LOCALBIN)/manager

# STACKS (default 1000) stacks against a bare client on the full local cluster,
# in two rounds (STACKS/10 and STACKS); IDLE (default 60s) of steady state; then an
# operator upgrade without and with a PostgresRolloutPolicy, database pods on the
# new images taking DATABASE_START (default 5s) to start.
.PHONY: bench
bench: manager-bin cluster-bins ## Measure pgstack against the design's numbers on the local cluster (STACKS=1000, IDLE=60s); writes bench/results.json.
	$(LOCAL_GOFLAGS) go run ./test/bench -manager $(LOCALBIN)/manager

# pgstack's own OLM bundle: its version and the manager image it installs.
VERSION ?= 0.1.0
BUNDLE_MANAGER_IMG ?= pgstack/manager:v$(VERSION)

.PHONY: bundle
bundle: manifests ## Generate pgstack's OLM bundle in bundle/ (VERSION=..., BUNDLE_MANAGER_IMG=...).
	go run ./cmd/bundlegen -version $(VERSION) -image $(BUNDLE_MANAGER_IMG)

.PHONY: docker-build
docker-build: ## Build the manager image (needs a container engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the current kube context.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRDs from the current kube context.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the manager (IMG=...) into the current kube context.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the manager from the current kube context.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Tools (built from Go modules into bin/)

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	@echo ">> building controller-gen $(CONTROLLER_TOOLS_VERSION)"
	GOBIN=$(LOCALBIN)/.gobin go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/.gobin/controller-gen $@

$(KUSTOMIZE): | $(LOCALBIN)
	@echo ">> building kustomize $(KUSTOMIZE_VERSION)"
	GOBIN=$(LOCALBIN)/.gobin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/.gobin/kustomize $@

# kube-apiserver, kube-controller-manager, kube-scheduler and etcd share most
# of their packages (k8s.io/kubernetes; etcd's client, grpc, protobuf): one go
# build compiles each shared package once, where concurrent builds would each
# compile it before the cache had it.
$(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(ETCD) &:
	@mkdir -p $(KUBE_ASSETS)/.build
	@echo ">> building kube-apiserver, kube-controller-manager and kube-scheduler $(KUBE_VERSION) and etcd $(ETCD_VERSION) (cached after)"
	cd hack/kube && $(TOOL_BUILD_ENV) $(LOCAL_GOFLAGS) go build -o $(KUBE_ASSETS)/.build/ -ldflags "$(KUBE_LDFLAGS)" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
		go.etcd.io/etcd/server/v3
	mv $(KUBE_ASSETS)/.build/kube-apiserver $(KUBE_ASSETS)/.build/kube-controller-manager $(KUBE_ASSETS)/.build/kube-scheduler $(KUBE_ASSETS)/
	mv $(KUBE_ASSETS)/.build/server $(ETCD)

##@ Local cluster (test/cluster): kube-controller-manager, kube-scheduler, OLM, opm, kwok

# Versions come from the wrapper modules under hack/, so bumping one there
# changes the output path below and rebuilds; an unchanged version never does.
OLM_VERSION := $(shell sed -n 's|.*github.com/operator-framework/operator-lifecycle-manager \(v[0-9.]*\).*|\1|p' hack/olm/go.mod | head -1)
REGISTRY_VERSION := $(shell sed -n 's|.*github.com/operator-framework/operator-registry \(v[0-9.]*\).*|\1|p' hack/olm/go.mod | head -1)
KWOK_VERSION := $(shell sed -n 's|.*sigs.k8s.io/kwok \(v[0-9.]*\).*|\1|p' hack/olm/go.mod | head -1)

# Only 5.8.9's source is at hand: its binary runs for every catalog version,
# each with that release's own Deployment environment and RBAC.
PGO_VERSION ?= v5.8.9
PGO_SOURCE ?= $(abspath $(CURDIR)/../shared/pgo/$(PGO_VERSION)/source.tar.gz)
PGO_ASSETS ?= $(LOCALBIN)/pgo/$(PGO_VERSION)
PGO ?= $(PGO_ASSETS)/postgres-operator
# The overlay's files sit in a folder Go's ./... patterns skip (leading _),
# so pgstack's own module never sees PGO's main package.
PGO_OVERLAY := $(PGO_ASSETS)/_overlay
# test/cluster finds PGO's manager here.
export PGSTACK_PGO_ASSETS := $(PGO_ASSETS)

OLM_ASSETS ?= $(LOCALBIN)/olm/$(OLM_VERSION)-registry$(REGISTRY_VERSION)
OLM_OLM ?= $(OLM_ASSETS)/olm
OLM_CATALOG ?= $(OLM_ASSETS)/catalog
OPM ?= $(OLM_ASSETS)/opm
KWOK_ASSETS ?= $(LOCALBIN)/kwok/$(KWOK_VERSION)
KWOK ?= $(KWOK_ASSETS)/kwok
KWOK_STAGES ?= $(KWOK_ASSETS)/stages.yaml

# test/cluster finds OLM, opm and kwok here (kube-* and etcd via KUBEBUILDER_ASSETS).
export PGSTACK_OLM_ASSETS := $(OLM_ASSETS)
export PGSTACK_KWOK_ASSETS := $(KWOK_ASSETS)

.PHONY: cluster-bins
CLUSTER_BINS = $(KUBE_APISERVER) $(ETCD) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(OLM_OLM) $(OLM_CATALOG) $(OPM) $(KWOK) $(KWOK_STAGES) $(PGO)

# Three groups, one go build each: kube (with etcd), PGO's manager, and OLM
# (with opm and kwok) once PGO's is built (see below). The kube group builds
# beside the other two: a cold build keeps both cores busy through each
# group's links and cgo, where one group at a time leaves one idle.
cluster-bins: ## Build the full local cluster's binaries and PGO's manager (only when missing).
	@$(MAKE) --no-print-directory -s -j3 $(CLUSTER_BINS)

# hack/olm takes PGO's versions of the modules below client-go,
# controller-runtime and grpc, so those compile once for both: OLM's group
# starts when PGO's manager is built and finds them in the cache (run side by
# side, each build would compile them). The kube group builds meanwhile.
$(OLM_OLM) $(OLM_CATALOG) $(OPM) $(KWOK): | $(PGO)

# OLM's two operators, opm and kwok share client-go, apimachinery and grpc:
# one module (hack/olm), one build. opm's tags pick sqlite's JSON1 extension
# and containers/image's pure-Go OpenPGP; they change nothing else.
$(OLM_OLM) $(OLM_CATALOG) $(OPM) $(KWOK) &:
	@mkdir -p $(OLM_ASSETS)/.build $(KWOK_ASSETS)
	@echo ">> building OLM's olm and catalog operators $(OLM_VERSION), opm $(REGISTRY_VERSION) and kwok $(KWOK_VERSION)"
	cd hack/olm && $(TOOL_BUILD_ENV) $(LOCAL_GOFLAGS) go build -ldflags "$(TOOL_LDFLAGS)" -tags json1,containers_image_openpgp -o $(OLM_ASSETS)/.build/ \
		github.com/operator-framework/operator-lifecycle-manager/cmd/olm github.com/operator-framework/operator-lifecycle-manager/cmd/catalog \
		github.com/operator-framework/operator-registry/cmd/opm sigs.k8s.io/kwok/cmd/kwok
	mv $(OLM_ASSETS)/.build/olm $(OLM_ASSETS)/.build/catalog $(OLM_ASSETS)/.build/opm $(OLM_ASSETS)/
	mv $(OLM_ASSETS)/.build/kwok $(KWOK)

##@ PGO's manager (built from ../shared/pgo's source, never copied into the repository)


.PHONY: pgo-bin
pgo-bin: $(PGO) ## Build PGO's manager from ../shared/pgo (only when missing).

# The only change to PGO: its two fixed listen addresses read an environment
# variable first (hack/pgo/addresses.go), through -overlay, so the extracted
# source stays as released.
$(PGO): hack/pgo/addresses.go
	@test -f $(PGO_SOURCE) || { echo "PGO's source is missing: expected $(PGO_SOURCE) (../shared/pgo beside the repository)"; exit 1; }
	@echo ">> building PGO's manager $(PGO_VERSION) from $(PGO_SOURCE)"
	rm -rf $(PGO_ASSETS)/src $(PGO_OVERLAY) && mkdir -p $(PGO_ASSETS)/src $(PGO_OVERLAY)
	tar -xzf $(PGO_SOURCE) -C $(PGO_ASSETS)/src
	sed -e 's|options.Metrics.BindAddress = ":8443"|options.Metrics.BindAddress = pgstackBindAddress("PGO_METRICS_BIND_ADDRESS", ":8443")|' \
		-e 's|options.HealthProbeBindAddress = ":8081"|options.HealthProbeBindAddress = pgstackBindAddress("PGO_HEALTH_PROBE_BIND_ADDRESS", ":8081")|' \
		$(PGO_ASSETS)/src/cmd/postgres-operator/main.go > $(PGO_OVERLAY)/main.go
	@test "$$(grep -c pgstackBindAddress $(PGO_OVERLAY)/main.go)" = 2 || { echo "PGO's main.go no longer sets its addresses as expected"; exit 1; }
	sed -e '/^\/\/go:build ignore/d' hack/pgo/addresses.go > $(PGO_OVERLAY)/addresses.go
	printf '{"Replace":{"%s":"%s","%s":"%s"}}\n' \
		$(PGO_ASSETS)/src/cmd/postgres-operator/main.go $(PGO_OVERLAY)/main.go \
		$(PGO_ASSETS)/src/cmd/postgres-operator/zz_pgstack_addresses.go $(PGO_OVERLAY)/addresses.go > $(PGO_OVERLAY)/overlay.json
	cd $(PGO_ASSETS)/src && $(TOOL_BUILD_ENV) $(LOCAL_GOFLAGS) go build -ldflags "$(TOOL_LDFLAGS)" -overlay $(PGO_OVERLAY)/overlay.json -o $@.tmp ./cmd/postgres-operator
	mv $@.tmp $@

# kwok runs only with stages configured: take kwok's own fast node and pod
# stages and its lease heartbeat (so nodes stay Ready) from the same module.
$(KWOK_STAGES):
	@mkdir -p $(KWOK_ASSETS)
	@echo ">> collecting kwok $(KWOK_VERSION)'s fast node/pod stages"
	dir=$$(cd hack/olm && go mod download -json sigs.k8s.io/kwok | sed -n 's|^[[:space:]]*"Dir": "\(.*\)",$$|\1|p') && test -d "$$dir" && \
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do \
		echo "---"; cat "$$dir/kustomize/stage/$$f"; \
	done > $@.tmp
	mv $@.tmp $@
