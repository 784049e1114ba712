# The ZIP reader (src/qcc_zip.c): the qcc-unzip tool, the helpers of
# t/020-unzip.t and the unit test's dependency on the test ZIP writer.

core: $(B)/qcc-unzip

$(B)/qcc-unzip: tools/qcc-unzip.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)
