# cpn-load: the load generator and its loopback reflector (tools/cpn-load*.c),
# and the unit test of its latency histogram.
LOAD_SRCS := tools/cpn-load.c tools/cpn-load-reflect.c tools/cpn-load-util.c tools/load_hist.c \
	userspace/lib/cpn_addr.c
LOAD_HDRS := tools/cpn-load.h tools/load_hist.h

$(BUILD)/cpn-load: $(LOAD_SRCS) $(LOAD_HDRS) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools $(CFLAGS) $(LOAD_SRCS) -o $@ -lpthread -lm

# An explicit rule: it wins over the pattern rule for selftests/unit/.
$(BUILD)/selftests/unit/test_load_hist: selftests/unit/test_load_hist.c tools/load_hist.c \
		tools/load_hist.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools $(CFLAGS) $(SANITIZE) $< tools/load_hist.c -o $@ $(CMOCKA) -lm

EXTRA_BINS  += $(BUILD)/cpn-load
EXTRA_TESTS += $(BUILD)/selftests/unit/test_load_hist
