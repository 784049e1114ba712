# The ZIP reader (src/qcc_zip.c): the qcc-unzip tool, the helpers of
# t/020-unzip.t, and the reader's second build with ISA-L's inflate
# (-DQCC_ZIP_ISAL=1 -lisal), tested as the first and measured beside it.

core: $(B)/qcc-unzip $(B)/qcc-unzip-isal

$(B)/qcc-unzip: tools/qcc-unzip.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

ZIP_ISAL := -DQCC_ZIP_ISAL=1

$(B)/qcc-unzip-isal: tools/qcc-unzip.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) $(ZIP_ISAL) -o $@ $< $(CORE_SRCS) $(CORE_LIBS) -lisal

# test-only: libzip as the reference reader, and a ZIP writer for the
# layouts 7-Zip does not make (zip4j's stream API, crafted hostile files)
ZIP_TEST_BINS := $(B)/t/zip-libzip $(B)/t/zip-write

$(B)/t/zip-libzip: t/zip/zip-libzip.c
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< -lzip -lcrypto

$(B)/t/zip-write: t/zip/zip-write.c t/unit/zipw.h
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< -lcrypto -lz

prove: $(ZIP_TEST_BINS) $(B)/qcc-unzip-isal

$(B)/unit/test_zip $(B)/unit-san/test_zip: t/unit/zipw.h
$(B)/fuzz/fuzz_zip: t/unit/zipw.h

# the unit test and the fuzz corpus again over the ISA-L build
.PHONY: zip-unit-isal zip-unit-san-isal zip-fuzz-replay-isal

$(B)/unit-isal/test_zip: t/unit/test_zip.c t/unit/unit.h t/unit/zipw.h \
                         $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) $(ZIP_ISAL) -o $@ $< $(CORE_SRCS) $(CORE_LIBS) -lisal

$(B)/unit-san-isal/test_zip: t/unit/test_zip.c t/unit/unit.h t/unit/zipw.h \
                             $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) $(ZIP_ISAL) -o $@ $< $(CORE_SRCS) $(CORE_LIBS) \
	    -lisal

$(B)/fuzz/fuzz_zip_isal: t/fuzz/fuzz_zip.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -Isrc $(ZIP_ISAL) -o $@ $< $(CORE_SRCS) \
	    $(CORE_LIBS) -lisal

zip-unit-isal: $(B)/unit-isal/test_zip
	@cd t/unit && echo -n "isal: " && ../../$<

zip-unit-san-isal: $(B)/unit-san-isal/test_zip
	@cd t/unit && echo -n "isal: " && \
	    UBSAN_OPTIONS=print_stacktrace=1 ../../$<

zip-fuzz-replay-isal: $(B)/fuzz/fuzz_zip_isal
	@echo "fuzz-replay: fuzz_zip_isal over t/fuzz/corpus/zip"
	@$< -runs=0 t/fuzz/corpus/zip > $(B)/fuzz/fuzz_zip_isal.replay.log 2>&1 \
	    || { tail -40 $(B)/fuzz/fuzz_zip_isal.replay.log; exit 1; }

# (the ASan/UBSan build of the ISA-L variant runs on demand: `make
# zip-unit-san-isal`; its fuzz replay below is sanitized already)
unit: zip-unit-isal
fuzz-replay: zip-fuzz-replay-isal

# libisal-dev for the ISA-L build; for bench/unzip.sh, GNU time (peak RSS)
# and libdeflate (the whole-buffer comparison)
EXTRA_DEB_PKGS += libisal-dev time libdeflate-dev
