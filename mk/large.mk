# Large pushes (issue 11): bench/large.sh's driver over the nginx-free
# core, and a ThreadSanitizer build of the unpack test (the pipelined
# unpack runs a second thread; test_unpack runs several unpacks at once).
#   make unit-tsan

$(B)/bench/large-driver: bench/large-driver.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS) -pthread

.PHONY: unit-tsan

$(B)/unit-tsan/test_unpack: t/unit/test_unpack.c t/unit/unit.h t/unit/zipw.h \
                            $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CLANG) -O1 -g -fsanitize=thread -Isrc -o $@ $< $(CORE_SRCS) \
	    $(CORE_LIBS) -pthread

unit-tsan: $(B)/unit-tsan/test_unpack
	@cd t/unit && echo -n "tsan: " && TSAN_OPTIONS=halt_on_error=1 ../../$<

unit-san: unit-tsan

$(B)/unit/test_unpack $(B)/unit-san/test_unpack: t/unit/zipw.h
