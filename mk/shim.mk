# test-only: an LD_PRELOAD telling whether nginx's pool threads end holding
# libcrypto's per-thread state (t/065-unpack-exit.t)

TSD_CHECK := $(B)/t/tsd-check.so

$(TSD_CHECK): t/shim/tsd-check.c
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -fPIC -shared -o $@ $< -ldl

test-bins: $(TSD_CHECK)
prove: $(TSD_CHECK)
