# nshelper: build, test and install. `make help` lists the targets.

CARGO  ?= cargo
PREFIX ?= /usr/local
# Release binaries are linked statically (glibc's crt-static): a privileged helper that
# loads no shared objects starts in well under half the time, which is most of the cost of
# a one-container query, and its behaviour does not depend on the dynamic loader's search
# path or environment. crt-static needs an explicit --target, or proc-macros fail to build.
TRIPLE  := $(shell rustc -vV | sed -n 's/^host: //p')
RELEASE := target/$(TRIPLE)/release
STATIC  := RUSTFLAGS="-C target-feature=+crt-static"

BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASH_COMPLETIONS ?= $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETIONS  ?= $(PREFIX)/share/zsh/site-functions
FISH_COMPLETIONS ?= $(PREFIX)/share/fish/vendor_completions.d

# Where `make build` leaves the binaries, and man and completions their output. Given on the
# command line (`make install BUILD_DIR=target/debug`), it names binaries built already, and
# nothing is built: the tests install a debug build without a release build of their own.
BUILD_DIR ?= $(RELEASE)
BIN       := $(BUILD_DIR)/nshelper
GEN_DOCS  := $(BUILD_DIR)/nshelper-gen-docs
ifeq ($(origin BUILD_DIR),file)
BUILT := build
else
BUILT :=
endif

.DEFAULT_GOAL := help
.PHONY: help build test lint install clean deps demo bench schema man completions

help: ## List the targets and what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build nshelper (release, static) into target/<host triple>/release, with nshelper-gen-docs beside it
	$(STATIC) $(CARGO) build --release --locked --target $(TRIPLE) -p nshelper

# The man pages' date is the last commit's, so that the same source makes the same pages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

man: $(BUILT) ## Generate the man pages, nshelper.1 and one per subcommand, into target/<host triple>/release/man
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GEN_DOCS) man $(BUILD_DIR)/man

completions: $(BUILT) ## Generate the bash, zsh and fish completions into target/<host triple>/release/completions
	$(GEN_DOCS) completions $(BUILD_DIR)/completions

deps: ## Install what the tests need: iproute2, util-linux, strace, python3-jsonschema, man-db, zsh, fish, cargo-nextest
	@command -v ip >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null \
		&& command -v lsns >/dev/null && command -v setpriv >/dev/null && command -v strace >/dev/null \
		&& command -v python3 >/dev/null && python3 -c 'import jsonschema' 2>/dev/null \
		&& command -v man >/dev/null && command -v zsh >/dev/null && command -v fish >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			iproute2 util-linux strace python3 python3-jsonschema man-db zsh fish; }
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest

test: deps ## Build everything, then run the unit, integration and doc tests (as root: they make namespaces)
	$(CARGO) build --locked --workspace --all-targets
	$(CARGO) nextest run --locked --workspace --no-fail-fast
	$(CARGO) test --locked --workspace --doc

lint: ## Check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

install: $(BUILT) man completions ## Install nshelper, its man pages and completions into DESTDIR and PREFIX (/usr/local)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/nshelper
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(BUILD_DIR)/man/nshelper*.1 $(DESTDIR)$(MANDIR)/man1/
	install -D -m 0644 $(BUILD_DIR)/completions/nshelper.bash $(DESTDIR)$(BASH_COMPLETIONS)/nshelper
	install -D -m 0644 $(BUILD_DIR)/completions/_nshelper $(DESTDIR)$(ZSH_COMPLETIONS)/_nshelper
	install -D -m 0644 $(BUILD_DIR)/completions/nshelper.fish $(DESTDIR)$(FISH_COMPLETIONS)/nshelper.fish

schema: ## Regenerate the JSON Schemas in docs/schema/ from the model's types (nshelper schema)
	$(CARGO) run --locked -q -p nshelper -- schema >docs/schema/nshelper.json
	for document in query list whois; do \
		$(CARGO) run --locked -q -p nshelper -- schema $$document >docs/schema/$$document.json || exit 1; \
	done

demo: deps build ## Start a throwaway container with unshare and query its links with nshelper
	unshare --net --mount --pid --fork --mount-proc --propagation private bash scripts/demo.sh $(BIN)

bench: ## Time nshelper against ip, nsenter and the limit probe in a private world (root); writes bench/RESULTS.md
	$(STATIC) $(CARGO) build --release --locked --target $(TRIPLE) --workspace
	NSHELPER=$(RELEASE)/nshelper LIMIT_PROBE=$(RELEASE)/limit-probe PEAK_RSS=$(RELEASE)/peak-rss \
		unshare --net --mount --pid --fork --mount-proc --propagation private python3 bench/run.py

clean: ## Remove build output
	$(CARGO) clean
