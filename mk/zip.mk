# The ZIP reader (src/qcc_zip.c): the qcc-unzip tool, the helpers of
# t/020-unzip.t and the unit test's dependency on the test ZIP writer.

core: $(B)/qcc-unzip

$(B)/qcc-unzip: tools/qcc-unzip.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

# test-only: libzip as the reference reader, and a ZIP writer for the
# layouts 7-Zip does not make (zip4j's stream API, crafted hostile files)
ZIP_TEST_BINS := $(B)/t/zip-libzip $(B)/t/zip-write

$(B)/t/zip-libzip: t/zip/zip-libzip.c
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< -lzip -lcrypto

$(B)/t/zip-write: t/zip/zip-write.c t/unit/zipw.h
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< -lcrypto -lz

prove: $(ZIP_TEST_BINS)

$(B)/unit/test_zip $(B)/unit-san/test_zip: t/unit/zipw.h
$(B)/fuzz/fuzz_zip: t/unit/zipw.h
