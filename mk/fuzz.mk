# Fuzz targets (selftests/fuzz/): clang's libFuzzer with ASan and UBSan over
# the real parsers. The libcpn sources they take are built once more in
# the fuzz flavour, under $(BUILD)/obj-fuzz, with clang and
# -fsanitize=fuzzer-no-link; the targets link -fsanitize=fuzzer.
#
#   make fuzz            build every target, run each for FUZZ_SECONDS (600)
#                        with its corpus selftests/fuzz/corpus/<target>/
#   make fuzz-build      build them only ($(BUILD)/fuzz/fuzz_*); make tests
#                        builds them too
#
# A crash is written as crash-<sha1> in the current directory; it reproduces
# with `build/fuzz/fuzz_X crash-<sha1>`.
FOBJ         := $(BUILD)/obj-fuzz
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SECONDS ?= 600
FUZZ_CC      ?= $(CLANG)
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_TARGETS := fuzz_proto fuzz_config fuzz_client_rx fuzz_worker_rx fuzz_router
FUZZ_PROGS   := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
fobj = $(patsubst %.c,$(FOBJ)/%.o,$(1))

$(FOBJ)/%.o: %.c | skels
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c $< -o $@

$(FOBJ)/userspace/worker/%.o $(FOBJ)/selftests/fuzz/%.o: CPPFLAGS += -Iuserspace/worker
# The packet path reads the headers where the frame puts them, as the data
# planes do (an IPv4 header 2 bytes past a 4-byte boundary, ...).
$(FOBJ)/selftests/fuzz/fuzz_router.o: FUZZ_SAN += -fno-sanitize=alignment

# What the targets take of libcpn: an archive, so that each links only the
# objects it uses.
FUZZ_LIB_SRCS := $(addprefix userspace/lib/,cpn_addr.c cpn_util.c cpn_pkt.c) \
	$(filter userspace/lib/cpn_cfg%.c,$(LIBCPN_BPF)) $(LIBCPN_CLIENT_SRCS) $(LIBCPN_WORKER_SRCS)
FUZZ_LIB := $(FUZZ_DIR)/libcpn-fuzz.a
$(FUZZ_LIB): $(call fobj,$(FUZZ_LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_PROGS): LIBS := -lyaml $(LIBBPF) -lmicrohttpd $(SODIUM_LIBS) -lpthread -lm
# A static pattern: the targets' objects are kept (not intermediate).
$(FUZZ_PROGS): $(FUZZ_DIR)/%: $(FOBJ)/selftests/fuzz/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) \
		-o $@ $(LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_PROGS)
# make test runs each briefly (selftests/e2e/test_fuzz_smoke.sh).
TEST_PROGS += $(FUZZ_PROGS)

# Each target in turn for FUZZ_SECONDS; new inputs go to its corpus.
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $$t: $(FUZZ_SECONDS) s, corpus selftests/fuzz/corpus/$$t"; \
		mkdir -p selftests/fuzz/corpus/$$t; \
		$(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			selftests/fuzz/corpus/$$t; \
	done
