# cpnctl (userspace/cpnctl): the controller, CLI and daemon.
CPNCTL_SRCS := $(wildcard userspace/cpnctl/*.c)

$(OBJ)/userspace/cpnctl/%.o $(SOBJ)/userspace/cpnctl/%.o: CPPFLAGS += -Iuserspace/cpnctl

$(BUILD)/cpnctl: LIBS := $(LIBXDP) $(LIBBPF) -lyaml -lmicrohttpd -lpthread
$(BUILD)/cpnctl: $(call obj,$(CPNCTL_SRCS)) $(LIBCPN_A)
	$(LINK)

PROGS += $(BUILD)/cpnctl
