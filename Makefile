# ipvsman — `make help` lists the targets.
GO       ?= go
BIN      := bin
VERSION  ?= 0.8.0+$(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/ipvsman/ipvsman/cluster/release.Version=$(VERSION)
FUZZTIME ?= 5s
RUNS     ?= 1
UNIT     := ./fsm/... ./cluster/... ./director/... ./vip/... ./cmd/...
PREFIX   ?= /usr/local
DESTDIR  ?=

.DEFAULT_GOAL := help
.PHONY: help build install test test-unit test-host faults e2e fuzz lint demo demo-loopback lab-selftest lab-shell bench bench-apply bench-failover bench-health bench-scale bench-scaleout bench-sync bench-upgrade bench-writes package test-package clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/ipvsmand and bin/ipvsman (static, CGO_ENABLED=0), their man pages (bin/man/man8) and shell completions (bin/completions)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ipvsmand ./cmd/ipvsmand
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ipvsman ./cmd/ipvsman
	@BIN='$(BIN)' bash packaging/gendocs.sh

install: build ## install into $(DESTDIR)$(PREFIX) (PREFIX=/usr/local): binaries in sbin, man pages, completions, the systemd unit (not enabled), examples
	@BIN='$(BIN)' PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' bash packaging/install.sh

test: ## all tests, as CI runs them (the three tiers and fuzzing); ends with each tier's duration
	@MAKE='$(MAKE)' bash test/tiers.sh lint test-unit test-host faults test-package fuzz e2e

test-unit: ## tier 1: pure code (fsm, parsers, cluster), race detector on; fast, no root; the packages' lines (test/arch), the skip helper, the runners, the figures
	$(GO) test -race -count=1 $(UNIT)
	$(GO) test -count=1 ./test/arch/ ./test/skip/ ./test/runners/ ./test/figures/
	$(GO) test -race -count=1 -tags next ./fsm/... ./cluster/... ./cmd/... # the simulated next release (rolling-upgrade gate)

test-host: ## tier 2: real ipvsmand processes and the CLI on loopback (--ipvs=off); the lab topology on the host (root)
	$(GO) test -race -count=1 -timeout 15m ./test/host/... ./test/lab/topo/... ./test/lab/labtool/... ./test/failover/...

faults: ## fault injection in namespaces (root): leader isolated, split, flapping link, kill -9 loop, damaged data dir, disk full, clock step; ends with a table and writes_lost, vip_overlap_ms, scenarios
	$(GO) test -c -o $(BIN)/faults.test ./test/faults/
	cd test/faults && FAULTS_RUNS=$(RUNS) ../../$(BIN)/faults.test -test.v -test.count=1 -test.timeout $$((10 + 5 * $(RUNS)))m

e2e: ## tier 3: every lab test, with real IPVS inside the lab VM (root; ends with "lab: N passed, N failed")
	bash test/lab/e2e.sh

package: build ## dist/ipvsman_VERSION_amd64.deb (nfpm): binaries, systemd unit, man pages, completions, examples
	@VERSION='$(VERSION)' BIN='$(BIN)' GO='$(GO)' bash packaging/package.sh

test-package: ## build the .deb, check it unpacked and installed into fresh roots (dpkg -x, dpkg --root, a chroot: root); the examples parse
	$(GO) test -count=1 ./test/package/...
	VERSION='$(VERSION)' bash test/package/package_test.sh

lab-selftest: ## boot the lab VM and prove IPVS works there (about 20 s)
	bash test/lab/vm/selftest.sh

lab-shell: ## the lab VM with the topology and a three-director cluster up, and a shell to explore it
	bash test/lab/shell.sh

bench-apply: ## lab VM: reconciler full apply of 1,000 services x 10 real servers vs ipvsadm -R, and one change (medians)
	bash test/lab/bench.sh

bench-failover: ## namespaces (root): client-visible failover, ipvsman vs keepalived VRRP, an idle run and a stress run (CYCLES=20 IDLE=10m STRESS=10m ONLY= DAEMON_ARGS=--nice=-20, as the packaged unit)
	bash test/failover/bench.sh

bench-health: ## lab VM: HTTP checks at 1 s vs keepalived's checker: CPU per 1,000 checks at the rate both hold (3 rounds), false downs and effective interval at 5,000; a storm (WINDOW=30s CHECKS=5000 LADDER= RATE= ROUNDS=3)
	bash test/lab/bench_health.sh

bench-scale: ## lab VM: 2,277 services x 37,205 real servers on three directors: apply, one-change propagation, resync CPU, RSS vs a keepalived reload (CHECKS=2000 CHANGES=50 WINDOW=60s ROUNDS=3)
	bash test/lab/bench_scale.sh

bench-scaleout: ## lab VM: three directors active behind a BIRD ECMP router (BFD, L4 hashing): each director's share of new connections, mh flows moved by a real server's add, crash failover and surviving connections, failed requests in a drain (ROUNDS=3 CONNS=900 BFD=on LINKCUT=on)
	bash test/lab/bench_scaleout.sh

bench-sync: ## lab VM: 50 echo connections through the VIP across a leader crash, with and without connection sync (DR and NAT), and a planned transfer
	LAB_WORK=$(CURDIR)/.lab/bench-sync LAB_ENV_IPVSMAN_SYNC_WINDOW=90s bash test/lab/e2e.sh -test.run TestConnectionsSurviveFailover

bench-upgrade: ## lab VM: rolling upgrade of the three directors to the next release under traffic; failed requests and broken connections
	@LAB_WORK=$(CURDIR)/.lab/bench-upgrade bash test/lab/e2e.sh -test.run TestRollingUpgrade; s=$$?; \
		grep -h '^upgrade_' $(CURDIR)/.lab/bench-upgrade/output.txt 2>/dev/null; exit $$s

bench-writes: build ## loopback: ipvsman -R of 1k, 10k, 100k real servers and 10k services x 10, a follower restart; write_scaling_100x, restart_to_serving_s, leader_changes (BENCH_LOGS=DIR keeps the daemons' logs)
	$(GO) test -c -tags benchwrites -o $(BIN)/benchwrites.test ./test/benchwrites/
	IPVSMAN_BIN_DIR=$(CURDIR)/$(BIN) $(BIN)/benchwrites.test -test.run '^TestBenchWrites$$' -test.count=1 -test.timeout 90m

bench: bench-apply bench-failover bench-health bench-scale bench-scaleout bench-sync bench-upgrade bench-writes ## every benchmark

fuzz: ## run every fuzz target for FUZZTIME each (default 5s)
	@FUZZTIME=$(FUZZTIME) GO=$(GO) sh test/fuzz.sh

lint: ## gofmt, and go vet under every build tag set the files use (next, benchwrites, lab, ...)
	@GO=$(GO) bash test/lint.sh

demo: ## the lab VM: three ipvsman directors with real IPVS, client traffic, the leader killed
	@bash test/lab/demo.sh

demo-loopback: build ## three ipvsmand --ipvs=off on loopback, no VM (the cluster alone)
	@bash test/demo/loopback.sh

clean: ## remove build output
	rm -rf $(BIN) dist
