# libcpn (userspace/lib): what every userspace program of cpn shares, built
# once, in two tiers.
#
#   base    no libbpf: addresses, numbers, keys, the clock (cpn_addr,
#           cpn_util), Prometheus text and /metrics over libmicrohttpd
#           (cpn_prom, cpn_http), the packet builder (cpn_pkt)
#   bpf     the router's maps by pin or by object (cpn_maps, cpn_bpffs) and
#           the configuration model (cpn_cfg*: YAML in and out, checks,
#           conversion to map values), on libbpf and libyaml; the etcd
#           client (cpn_etcd: etcd v3's JSON gateway), on libcurl and json-c:
#           a program that uses it links $(LIBCPN_ETCD_LIBS)
#
#   $(BUILD)/libcpn.a         both tiers: every program links it (a program
#                             takes only the objects it uses: cpn-worker no
#                             libbpf)
#   $(BUILD)/libcpn.so.0.1.0  the base tier as a shared library, soname
#                             libcpn.so.0, with libcpn.pc: for applications
#   $(BUILD)/libcpn-san.a     both tiers, sanitised, for the tests
LIBCPN_VERSION := 0.1.0
LIBCPN_SONAME  := libcpn.so.0
# The application libraries are base tier too: the client (cpn/client.h,
# userspace/lib/cpn_client*.c) and the worker (cpn/worker.h, userspace/worker/).
LIBCPN_CLIENT_SRCS := $(wildcard userspace/lib/cpn_client*.c)
LIBCPN_WORKER_SRCS := $(wildcard userspace/worker/*.c)
LIBCPN_BASE := $(addprefix userspace/lib/,cpn_addr.c cpn_util.c cpn_http.c cpn_pkt.c cpn_prom.c) \
	$(LIBCPN_CLIENT_SRCS) $(LIBCPN_WORKER_SRCS)
LIBCPN_BPF  := $(filter-out $(LIBCPN_BASE),$(wildcard userspace/lib/*.c))
LIBCPN_SRCS := $(LIBCPN_BASE) $(LIBCPN_BPF)
# Sealed payloads (cpn_client_seal.c): libsodium, for every program of the
# client or the worker library.
SODIUM_LIBS := $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)
LIBCPN_ETCD_LIBS := $(shell pkg-config --libs libcurl json-c 2>/dev/null || echo -lcurl -ljson-c)

LIBCPN_A     := $(BUILD)/libcpn.a
LIBCPN_SO    := $(BUILD)/libcpn.so.$(LIBCPN_VERSION)
LIBCPN_SAN_A := $(BUILD)/libcpn-san.a
LIBCPN_PC    := $(BUILD)/libcpn.pc

# Position-independent: the same objects go into the archive and the .so.
$(OBJ)/userspace/lib/%.o $(OBJ)/userspace/worker/%.o: CFLAGS += -fPIC -fvisibility=default
$(OBJ)/userspace/worker/%.o $(SOBJ)/userspace/worker/%.o: CPPFLAGS += -Iuserspace/worker

$(LIBCPN_A): $(call obj,$(LIBCPN_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBCPN_SAN_A): $(call sobj,$(LIBCPN_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBCPN_SO): $(call obj,$(LIBCPN_BASE))
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIBCPN_SONAME) -Wl,--no-undefined $^ \
		-o $@ -lmicrohttpd $(SODIUM_LIBS) -lpthread -lm
	ln -sf $(notdir $@) $(BUILD)/$(LIBCPN_SONAME)
	ln -sf $(LIBCPN_SONAME) $(BUILD)/libcpn.so

# Written on every make, replaced only when it differs: it names PREFIX.
$(LIBCPN_PC): mk/lib.mk FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' \
		'libdir=$${prefix}/lib/$(MULTIARCH)' '' 'Name: libcpn' \
		'Description: cpn, the computing-power-network routing plane: wire format and library' \
		'Version: $(LIBCPN_VERSION)' 'Requires.private: libmicrohttpd libsodium' \
		'Libs: -L$${libdir} -lcpn' 'Cflags: -I$${includedir} -I$${includedir}/cpn' >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

.PHONY: FORCE
FORCE:

PROGS += $(LIBCPN_A) $(LIBCPN_SO) $(LIBCPN_PC)
TEST_PROGS += $(LIBCPN_SAN_A)
