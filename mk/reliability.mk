# Reliability: the module under ASan+UBSan and valgrind, fault injection,
# reloads under load, secret hygiene (README "Reliability").
#
#   make reliability-quick   inside `make test` (about two minutes)
#   make reliability         the long runs: the whole prove suite against
#                            the ASan+UBSan module and under valgrind,
#                            20 kill -9 trials, reloads under wrk, slowloris
#   make asan-module         build/asan/ngx_http_qcc_module.so only
#   make prove-asan | prove-valgrind | fault-long | fuzz-long

# wrk drives the reload-under-load test; valgrind the memcheck run; the
# sanitizer runtimes of gcc (the module is built with gcc, like nginx)
EXTRA_DEB_PKGS += wrk valgrind libasan8 libubsan1

ASAN_DIR    := $(B)/asan
ASAN_SO     := $(ASAN_DIR)/ngx_http_qcc_module.so
ASAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer

# The preloaded runtimes and their options: Debian's nginx binary is not
# instrumented, so the runtime must come first; leaks are valgrind's job
# (nginx leaves its cycle pools to exit); reports go to stderr, which
# nginx points at its error log, where check_error_log looks.
ASAN_LIBS   := $(shell gcc -print-file-name=libasan.so) \
               $(shell gcc -print-file-name=libubsan.so)
ASAN_ENV    := QCC_SAN_PRELOAD="$(strip $(ASAN_LIBS))" \
               TEST_NGINX_BINARY=$(CURDIR)/t/bin/nginx-san \
               QCC_RUN_NGINX=$(CURDIR)/t/bin/nginx-san \
               ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:detect_odr_violation=0:log_exe_name=1 \
               UBSAN_OPTIONS=print_stacktrace=1 \
               TEST_QCC_MODULE=$(CURDIR)/$(ASAN_SO)

.PHONY: asan-module prove-asan prove-asan-quick prove-valgrind \
        reliability-quick \
        reliability fault-long fuzz-long secrets-check

asan-module: $(ASAN_SO)

$(ASAN_DIR)/nginx/objs/Makefile: config $(B)/srclist
	rm -rf $(ASAN_DIR)/nginx
	mkdir -p $(ASAN_DIR)
	cp -a $(NGX_SRC) $(ASAN_DIR)/nginx
	cd $(ASAN_DIR)/nginx && . ./conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC -Wextra \
	        -Wno-unused-parameter -Wno-missing-field-initializers \
	        $(ASAN_FLAGS)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC \
	        $(ASAN_FLAGS)" \
	    --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(ASAN_SO): $(ASAN_DIR)/nginx/objs/Makefile $(CORE_SRCS) $(CORE_HDRS) \
            $(NGX_SRCS) $(NGX_HDRS)
	$(MAKE) -s -C $(ASAN_DIR)/nginx -f objs/Makefile modules
	cp $(ASAN_DIR)/nginx/objs/ngx_http_qcc_module.so $@

# The whole suite against the ASan+UBSan module.
# (through `make prove`, so its prerequisites are built as for `make test`)
prove-asan: $(ASAN_SO)
	$(ASAN_ENV) $(MAKE) prove

# The suite under valgrind memcheck: nginx as one process (master_process
# off, daemon off) started by the harness (TEST_QCC_VALGRIND=1), one log
# per nginx run in build/valgrind, summed up by t/bin/valgrind-summary:
# the target fails on any memcheck error or any leak whose stack names the
# module (nginx's own intentional ones are in t/valgrind.supp).  Tests that
# count on two workers or on timing fail under valgrind's 20-50x slowdown
# and are reported, not failed on (build/valgrind/prove.log); the ones
# that start no nginx of the harness are left out (005 the mock, 013
# `make run`, 020 the unzip tool), and those that kill workers or reload
# a master skip themselves.
VG_LOGS     := $(B)/valgrind
VG_SKIP     := t/005-mock.t t/013-run.t t/020-unzip.t
VG_TESTS    ?= $(filter-out $(VG_SKIP),$(sort $(wildcard t/[0-9]*.t)))

prove-valgrind: all
	rm -rf $(VG_LOGS) && mkdir -p $(VG_LOGS)
	-TEST_QCC_VALGRIND=1 TEST_QCC_VALGRIND_LOGS=$(CURDIR)/$(VG_LOGS) \
	    prove -I t/lib $(VG_TESTS) > $(VG_LOGS)/prove.log 2>&1
	@grep -A30 '^Test Summary Report' $(VG_LOGS)/prove.log \
	    | grep -E '^t/|Failed tests' || true
	set -o pipefail; t/bin/valgrind-summary $(VG_LOGS) | tee $(VG_LOGS)/summary.txt

# Secret hygiene over what the test servers leave behind: the tests run
# at debug level with their prefixes kept under build/secrets, then
# t/bin/secrets-scan looks for each prefix's SecretKey and every order's
# unzipPassword in every log and file name, and checks journals and secret
# files are 0600.  Quick set by default; `make reliability` scans the
# whole suite (SECRETS_TESTS='t/*.t').
SECRETS_DIR   := $(B)/secrets
SECRETS_TESTS ?= t/010-sign.t t/030-callback.t t/060-fetch.t t/085-secrets.t

secrets-check: all
	rm -rf $(SECRETS_DIR) && mkdir -p $(SECRETS_DIR) && chmod 0755 $(SECRETS_DIR)
	TMPDIR=$(CURDIR)/$(SECRETS_DIR) TEST_QCC_KEEP=1 TEST_QCC_LOG_LEVEL=debug \
	    prove -I t/lib $(SECRETS_TESTS) > $(SECRETS_DIR)/prove.log 2>&1 \
	    || { tail -30 $(SECRETS_DIR)/prove.log; \
	         echo "secrets-check: prove failed (at debug level)"; \
	         [ -n "$(SECRETS_ALLOW_FAIL)" ] || exit 1; }
	t/bin/secrets-scan $(SECRETS_DIR)

# The tests of the edge's hot paths against the ASan+UBSan module, in
# `make test`: the callback, the queue, the refusal's batched log lines
# (whose use of a freed connection log only ASan shows), the fetch.
ASAN_QUICK_TESTS ?= t/030-callback.t t/031-queue.t t/032-refusal-log.t \
                    t/060-fetch.t

prove-asan-quick: all $(ASAN_SO)
	$(ASAN_ENV) prove -I t/lib $(ASAN_QUICK_TESTS)

# Part of `make test` (the lead adds it there): about two minutes.  The
# quick forms of the fault tests (t/080-085) run in `make prove` itself.
reliability-quick: secrets-check prove-asan-quick

# The long runs, figures in build/reliability/figures.txt (the README's
# Reliability table): 20 kill -9 trials of 200 pushes, reloads during a
# minute of wrk load, 1000 slowloris connections, the journal filled
# with 1000 pushes, the ASan+UBSan and valgrind suites, the secrets scan
# of the whole suite at debug level, every fuzz target for
# RELIABILITY_FUZZ_SECONDS (300) each.
REL_DIR     := $(B)/reliability
RELIABILITY_FUZZ_SECONDS ?= 300

fault-long: all
	@mkdir -p $(REL_DIR)
	TEST_QCC_FIGURES=$(CURDIR)/$(REL_DIR)/figures.txt TEST_QCC_TRIALS=20 \
	    prove -I t/lib t/080-fault-kill.t
	TEST_QCC_FIGURES=$(CURDIR)/$(REL_DIR)/figures.txt TEST_QCC_PUSHES=1000 \
	    prove -I t/lib t/081-fault-journal-full.t
	TEST_QCC_FIGURES=$(CURDIR)/$(REL_DIR)/figures.txt \
	    TEST_QCC_LOAD_SECONDS=60 prove -I t/lib t/083-reload-load.t
	TEST_QCC_FIGURES=$(CURDIR)/$(REL_DIR)/figures.txt \
	    TEST_QCC_SLOW_CLIENTS=1000 prove -I t/lib t/084-slow-clients.t
	TEST_QCC_FIGURES=$(CURDIR)/$(REL_DIR)/figures.txt TEST_QCC_PUSHES=50 \
	    prove -I t/lib t/082-fault-spool.t

# each target for RELIABILITY_FUZZ_SECONDS from its corpus; new inputs in
# build/fuzz/new/<target>, libFuzzer's final stats in build/reliability
fuzz-long: $(FUZZ_BINS)
	@mkdir -p $(REL_DIR); set -e; for f in $(FUZZ_BINS); do \
	    n=$$(basename $$f); d=t/fuzz/corpus/$${n#fuzz_}; \
	    mkdir -p $(B)/fuzz/new/$$n; \
	    $$f -max_total_time=$(RELIABILITY_FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(REL_DIR)/$$n- $(B)/fuzz/new/$$n $$d \
	        > $(REL_DIR)/$$n.log 2>&1 || { tail -40 $(REL_DIR)/$$n.log; exit 1; }; \
	    echo "$$n: $$(grep -o 'number_of_executed_units: [0-9]*' \
	        $(REL_DIR)/$$n.log | grep -o '[0-9]*') runs in \
	        $(RELIABILITY_FUZZ_SECONDS)s, clean"; done

reliability: fault-long prove-asan prove-valgrind fuzz-long
	$(MAKE) secrets-check SECRETS_TESTS='$(sort $(wildcard t/[0-9]*.t))' \
	    SECRETS_ALLOW_FAIL=1
