# The tools (tools/*/): one directory each.
#
#   cpn-load    load generator and reflector (tools/cpn-load/)
#   cpn-sim     the scheduling simulator over sched.h, and cpn-mmk, M/M/k and
#               M/M/1 quantiles (tools/cpn-sim/)
#   cpn-pktgen  AF_XDP packet generator, and its counting sink
#               cpn_sink.bpf.o (tools/cpn-pktgen/; needs libxdp)
LOAD_SRCS   := $(wildcard tools/cpn-load/*.c)
SIM_SRCS    := tools/cpn-sim/cpn-sim.c
MMK_SRCS    := tools/cpn-sim/cpn-mmk.c
PKTGEN_SRCS := tools/cpn-pktgen/cpn-pktgen.c
PKTGEN_LIBS := $(LIBXDP)

$(OBJ)/tools/cpn-load/%.o $(SOBJ)/tools/cpn-load/%.o: CPPFLAGS += -Itools/cpn-load
$(OBJ)/tools/cpn-sim/%.o $(SOBJ)/tools/cpn-sim/%.o: CPPFLAGS += -Itools/cpn-sim
$(OBJ)/tools/cpn-pktgen/%.o: CPPFLAGS += -Itools/cpn-pktgen

$(BUILD)/cpn-load: LIBS := $(SODIUM_LIBS) -lpthread -lm
$(BUILD)/cpn-load: $(call obj,$(LOAD_SRCS)) $(LIBCPN_A)
	$(LINK)

$(BUILD)/cpn-sim: LIBS := -lm
$(BUILD)/cpn-sim: $(call obj,$(SIM_SRCS)) $(LIBCPN_A)
	$(LINK)

$(BUILD)/cpn-mmk: LIBS := -lm
$(BUILD)/cpn-mmk: $(call obj,$(MMK_SRCS)) $(LIBCPN_A)
	$(LINK)

$(BUILD)/cpn-pktgen: LIBS := $(PKTGEN_LIBS) $(LIBBPF) -lpthread -lm
ifeq ($(strip $(PKTGEN_LIBS)),)
$(BUILD)/cpn-pktgen:
	@echo "cpn-pktgen needs libxdp: pkg-config finds no libxdp (Debian package libxdp-dev; make deps)" >&2
	@exit 1
else
$(BUILD)/cpn-pktgen: $(call obj,$(PKTGEN_SRCS)) $(LIBCPN_A)
	$(LINK)
endif

PROGS += $(BUILD)/cpn-load $(BUILD)/cpn-sim $(BUILD)/cpn-mmk $(BUILD)/cpn-pktgen

# examples/client.c: an application of the client library, built as one
# would be, against the shared library and the installed-style headers
# (the -rpath only so that it runs from the build tree). Built by `all`,
# not installed; selftests/e2e/test_client.sh runs it.
$(BUILD)/examples/client: examples/client.c include/cpn/client.h $(LIBCPN_SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(LDFLAGS) $< -o $@ -L$(BUILD) -lcpn -Wl,-rpath,$(abspath $(BUILD))

BENCH_PROGS += $(BUILD)/examples/client
