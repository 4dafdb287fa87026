# cpnctl (userspace/cpnctl): the controller, CLI and daemon.
CPNCTL_SRCS := $(wildcard userspace/cpnctl/*.c)

$(OBJ)/userspace/cpnctl/%.o $(SOBJ)/userspace/cpnctl/%.o: CPPFLAGS += -Iuserspace/cpnctl

$(BUILD)/cpnctl: LIBS := $(LIBXDP) $(LIBBPF) -lyaml -lmicrohttpd $(LIBCPN_ETCD_LIBS) -lpthread
$(BUILD)/cpnctl: $(call obj,$(CPNCTL_SRCS)) $(LIBCPN_A)
	$(LINK)

PROGS += $(BUILD)/cpnctl

# cpnctl under ASan and UBSan, for the e2e tests that feed it what etcd (or
# something posing as etcd) answers (selftests/e2e/test_etcd*.sh).
$(BUILD)/selftests/e2e/cpnctl-asan: LIBS := $(LIBXDP) $(LIBBPF) -lyaml -lmicrohttpd \
	$(LIBCPN_ETCD_LIBS) -lpthread
$(BUILD)/selftests/e2e/cpnctl-asan: $(call sobj,$(CPNCTL_SRCS)) $(LIBCPN_SAN_A)
	$(LINK_SAN)

TEST_PROGS += $(BUILD)/selftests/e2e/cpnctl-asan
