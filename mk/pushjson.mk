# The push-file validator (src/qcc_pushjson.c): the qcc-pushjson tool, and
# its own measurement (the pipeline's is `make bench`).
#   make pushjson-bench [PUSHJSON_MB=500]

core: $(B)/qcc-pushjson

$(B)/qcc-pushjson: tools/qcc-pushjson.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

PUSHJSON_MB ?= 500

.PHONY: pushjson-bench

pushjson-bench: $(B)/qcc-pushjson
	@mkdir -p $(B)/bench
	@f=$(B)/bench/push-$(PUSHJSON_MB)mb.json; \
	[ -s $$f ] || { echo "gen-push: $$f"; t/bin/gen-push --feed corp \
	    --size $$(( $(PUSHJSON_MB) * 1000000 )) > $$f; }; \
	echo -n "cJSON per record: "; $(B)/qcc-pushjson $$f; \
	echo -n "native id check:  "; $(B)/qcc-pushjson -n $$f
