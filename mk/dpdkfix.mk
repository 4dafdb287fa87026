# The planes-agree fixture (selftests/dpdk/): fixture_gen builds the
# input capture and runs it through the real XDP object under
# BPF_PROG_TEST_RUN to write what cpn-fwd must transmit for it.
# selftests/dpdk/test_planes_agree.sh (run as e2e/test_planes_agree) uses it.
FIXGEN      := $(BUILD)/selftests/dpdk/fixture_gen
FIXGEN_SRCS := selftests/dpdk/fixture_gen.c userspace/cpnctl/config.c userspace/cpnctl/cfgmap.c

$(FIXGEN): $(FIXGEN_SRCS) userspace/cpnctl/cpnctl.h userspace/cpnctl/cfgmap.h $(BPFT_LIB) \
		$(BPFT_HDRS) $(HDRS) $(SKELS) $(BPF_OBJS) $(LIBCPN) $(LIBCPN_H) mk/dpdkfix.mk
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iselftests/bpf -Iuserspace/cpnctl $(CFLAGS) $(SANITIZE) $(FIXGEN_SRCS) \
		$(BPFT_LIB) $(LIBCPN) -o $@ $(LIBBPF) -lyaml -lm

EXTRA_TESTS += $(FIXGEN)
