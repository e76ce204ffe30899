# Landscaper. `make build` puts landscaper and every provider in ./bin.
GO        ?= go
# Go is expected in /usr/local/go when it is not on PATH already.
export PATH := $(PATH):/usr/local/go/bin
BIN       := $(CURDIR)/bin
TOOLS     := $(CURDIR)/.tools
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
PROVIDERS := $(notdir $(wildcard providers/*/cmd/landscaper-provider-*))

.PHONY: build test test-short generate lint bench bench-fleet bench-pull demo demo-vm demo-quickstart clean install-deps fuzz

build:
	$(GO) build -o $(BIN)/ ./landscaper/cmd/landscaper $(addprefix ./providers/,$(foreach p,$(PROVIDERS),$(patsubst landscaper-provider-%,%,$(p))/cmd/$(p)))

# The README's test command: installs what the tests need, then runs them
# with the race detector.
test: install-deps build
	$(GO) test -race -count=1 -timeout 45m ./...

install-deps:
	bash scripts/install-deps.sh

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)

generate: $(TOOLS)/buf
	PATH=$(TOOLS):$$PATH buf generate
	# The Python example provider's stubs, with Debian's python3-grpc-tools.
	/usr/bin/python3 -m grpc_tools.protoc -Iproto --python_out=examples/provider-python/gen \
		--grpc_python_out=examples/provider-python/gen landscaper/resource/v1/resource.proto

lint: $(TOOLS)/buf
	PATH=$(TOOLS):$$PATH buf lint
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting (gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	# The example provider is a Go module of its own (examples/provider-go).
	cd examples/provider-go && GOWORK=off $(GO) vet ./...

bench: build
	bash scripts/bench.sh

# landscaper apply of nixos.system on 1, 10 and 20 stand-in hosts against
# the same steps by hand (BENCHMARKS.md, "Fleet apply").
bench-fleet:
	bash scripts/bench-fleet.sh

# 100 and 1000 simulated pull agents, long-polling one `landscaper serve
# --pull-dir` on loopback (BENCHMARKS.md, "Pull mode: 1000 agents").
bench-pull:
	bash scripts/bench-pull.sh

# The README's first command: installs what is needed, builds, and installs
# a simulated new server with examples/install in one apply, served by
# `landscaper serve` (scripts/demo.sh).
demo:
	bash scripts/demo.sh

# examples/install on a real QEMU VM: powered on with an empty disk, it is
# installed by one apply and boots from its disk; phases timed
# (scripts/demo-vm.sh; LANDSCAPER_DEMO_KEEP=DIR keeps the disk and state).
demo-vm:
	bash scripts/demo-vm.sh

# The quickstart deployment (local files) in a temporary directory: plan,
# apply, destroy.
demo-quickstart:
	bash scripts/demo-quickstart.sh

# Runs every fuzz target for FUZZTIME each, one after the other:
# make fuzz FUZZTIME=5m. The seed corpora (testdata/fuzz) run with plain
# go test too.
FUZZTIME ?= 60s
FUZZ_TARGETS := \
	./landscaper/state FuzzDecode \
	./landscaper/eval FuzzSubstitute \
	./landscaper/eval FuzzDecodeEvaluation \
	./landscaper/ui FuzzRenderPlanHidesSecrets \
	./landscaper/bootserver FuzzParseName \
	./landscaper/bootserver FuzzMachineScript \
	./formats/bootentry FuzzNormalizeMAC \
	./formats/bootentry FuzzCheckCmdline \
	./providers/pxe-nbp/cpio FuzzWriter

fuzz:
	@set -e; set -- $(FUZZ_TARGETS); \
	while [ $$# -gt 0 ]; do \
		echo "== $$1 $$2 ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$2\$$" -fuzztime $(FUZZTIME) $$1; \
		shift 2; \
	done

clean:
	rm -rf $(BIN)
