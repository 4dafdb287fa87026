# cpn-sim: the discrete-event simulator of the policies of include/cpn/sched.h
# (tools/cpn-sim.c), cpn-mmk: M/M/k and M/M/1 reference quantiles
# (tools/cpn-mmk.c), both on the header-only math of tools/mmk.h, and the
# unit test of that math.
SIM_HDRS := tools/mmk.h

$(BUILD)/cpn-sim: tools/cpn-sim.c $(SIM_HDRS) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools $(CFLAGS) $< -o $@ -lm

$(BUILD)/cpn-mmk: tools/cpn-mmk.c $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools $(CFLAGS) $< -o $@ -lm

# An explicit rule: it wins over the pattern rule for selftests/unit/.
$(BUILD)/selftests/unit/test_mmk: selftests/unit/test_mmk.c $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itools $(CFLAGS) $(SANITIZE) $< -o $@ $(CMOCKA) -lm

EXTRA_BINS  += $(BUILD)/cpn-sim $(BUILD)/cpn-mmk
EXTRA_TESTS += $(BUILD)/selftests/unit/test_mmk

.PHONY: bench-sim
bench-sim: $(BUILD)/cpn-sim $(BUILD)/cpn-mmk
	tools/bench-sim.sh --plot-dir docs/bench
