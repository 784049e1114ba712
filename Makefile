# ngx_http_qcc_module: build, test, run, bench.
#
# `make`        build/ngx_http_qcc_module.so (against Debian's nginx-dev)
#               and the tools of the nginx-free core
# `make test`   deps + build + C unit tests (plain and ASan/UBSan) + fuzz
#               corpora replay + prove -r t/
# `make run`    the gateway in the foreground (sandbox upstream without
#               QCC credentials)
# Each concern adds its own targets in mk/*.mk.

SHELL       := /bin/bash
B           := build
NGX_SRC     ?= /usr/share/nginx/src
CC          ?= cc
CLANG       ?= clang-14

CORE_SRCS   := $(sort $(wildcard src/qcc_*.c))
CORE_HDRS   := $(sort $(wildcard src/qcc_*.h))
NGX_SRCS    := $(sort $(wildcard src/ngx_http_qcc_*.c))
NGX_HDRS    := $(sort $(wildcard src/ngx_http_qcc_*.h))
CORE_LIBS   := -lcrypto -lz -lcjson

CORE_CFLAGS := -std=gnu99 -O2 -g -Wall -Wextra -Werror -Isrc
SAN_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -Isrc

UNIT_SRCS   := $(sort $(wildcard t/unit/test_*.c))
UNIT_BINS   := $(patsubst t/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))
UNIT_SAN    := $(patsubst t/unit/%.c,$(B)/unit-san/%,$(UNIT_SRCS))
FUZZ_SRCS   := $(sort $(wildcard t/fuzz/fuzz_*.c))
FUZZ_BINS   := $(patsubst t/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60

# Debian packages `make test` needs; `make deps` installs the missing ones.
DEB_PKGS    := nginx nginx-dev libssl-dev zlib1g-dev libcjson-dev \
               p7zip-full libzip-dev libisal-dev clang-14 libclang-rt-14-dev \
               perl python3 make gcc

.PHONY: all module core deps test test-bins unit unit-san fuzz-replay fuzz prove \
        run bench clean reliability

all: module core

module: $(B)/ngx_http_qcc_module.so

# --- dependencies ---------------------------------------------------------

deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# --- the module -------------------------------------------------------------

# The list of sources is a file that changes only when the set changes,
# so adding a source file re-runs nginx's configure, and nothing else does.
$(B)/srclist: FORCE
	@mkdir -p $(B)
	@echo "$(CORE_SRCS) $(NGX_SRCS)" > $@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@

$(B)/nginx/objs/Makefile: config $(B)/srclist
	rm -rf $(B)/nginx
	cp -a $(NGX_SRC) $(B)/nginx
	cd $(B)/nginx && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC -Wextra \
	        -Wno-unused-parameter -Wno-missing-field-initializers" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	    --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(B)/ngx_http_qcc_module.so: $(B)/nginx/objs/Makefile $(CORE_SRCS) $(CORE_HDRS) \
                             $(NGX_SRCS) $(NGX_HDRS)
	$(MAKE) -s -C $(B)/nginx -f objs/Makefile modules
	@# renamed into place: a running nginx keeps the object it loaded
	cp $(B)/nginx/objs/ngx_http_qcc_module.so $@.tmp
	mv -f $@.tmp $@

# --- the core compiled once per flavour -------------------------------------

FUZZ_CFLAGS    := -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
                  -fno-sanitize-recover=all -Isrc
CORE_OBJS      := $(patsubst src/%.c,$(B)/obj/%.o,$(CORE_SRCS))
CORE_OBJS_SAN  := $(patsubst src/%.c,$(B)/obj-san/%.o,$(CORE_SRCS))
CORE_OBJS_FUZZ := $(patsubst src/%.c,$(B)/obj-fuzz/%.o,$(CORE_SRCS))

# kept between runs: they are not intermediate files
.SECONDARY: $(CORE_OBJS) $(CORE_OBJS_SAN) $(CORE_OBJS_FUZZ)

$(B)/obj/%.o: src/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

$(B)/obj-san/%.o: src/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) -c -o $@ $<

$(B)/obj-fuzz/%.o: src/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c -o $@ $<

# --- unit tests of the nginx-free core -------------------------------------

$(B)/unit/%: t/unit/%.c t/unit/unit.h $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_OBJS) $(CORE_LIBS)

$(B)/unit-san/%: t/unit/%.c t/unit/unit.h $(CORE_OBJS_SAN)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) -o $@ $< $(CORE_OBJS_SAN) $(CORE_LIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do (cd t/unit && ../../$$t); done

unit-san: $(UNIT_SAN)
	@set -e; for t in $(UNIT_SAN); do \
	    (cd t/unit && UBSAN_OPTIONS=print_stacktrace=1 ../../$$t); done

# --- libFuzzer targets (corpus in t/fuzz/corpus/<name>/) --------------------

$(B)/fuzz/%: t/fuzz/%.c $(CORE_OBJS_FUZZ)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_OBJS_FUZZ) \
	    $(CORE_LIBS)

# Replays each seed corpus: quick, part of `make test`.
fuzz-replay: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	    d=t/fuzz/corpus/$${n#fuzz_}; [ -d $$d ] || continue; \
	    echo "fuzz-replay: $$n over $$d"; \
	    $$f -runs=0 $$d > $(B)/fuzz/$$n.replay.log 2>&1 \
	        || { tail -40 $(B)/fuzz/$$n.replay.log; exit 1; }; done

# Long runs: make fuzz FUZZ_SECONDS=600; new inputs go to build/fuzz/new/.
fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	    d=t/fuzz/corpus/$${n#fuzz_}; mkdir -p $(B)/fuzz/new/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        $(B)/fuzz/new/$$n $$d 2>&1 | tail -12; done

# --- the whole suite --------------------------------------------------------

prove: all
	prove -r -I t/lib t/

# Everything is built first, two jobs at a time, then run in order.
test-bins: $(UNIT_BINS) $(UNIT_SAN) $(FUZZ_BINS)

test: deps
	$(MAKE) -j2 all test-bins
	$(MAKE) unit unit-san fuzz-replay reliability-quick
	$(MAKE) prove

# --- long runs ----------------------------------------------------------------

# A push of about 500 MB, end to end; part of `make reliability`.
.PHONY: large
large: deps all
	QCC_TEST_LARGE=1 prove -I t/lib t/063-large.t

reliability: large

# --- running ----------------------------------------------------------------

run: deps all
	@exec t/bin/qcc-run

bench: deps all
	@set -e; for b in $(filter-out bench/lib.sh,$(wildcard bench/*.sh)); do \
	    echo "== $$b"; bash $$b; done

clean:
	rm -rf $(B)

FORCE:

-include mk/*.mk
