# cpn-worker (gpu/worker*.c): UDP front end, dynamic batcher, batch slots,
# /metrics. Its kernels and backends come from mk/kernels.mk (KERNEL_SRCS,
# KERNEL_LIBS), which `include` reads before this fragment (name order).
#
#   $(BUILD)/cpn-worker                          the program (make all)
#   $(BUILD)/selftests/e2e/cpn-worker-asan       the same, ASan/UBSan, for the e2e test
#   $(BUILD)/selftests/e2e/worker_kcheck         the test's client: references and tags
WORKER_SRCS := gpu/worker.c gpu/worker_net.c gpu/worker_batch.c gpu/worker_metrics.c userspace/http/cpn_http.c \
	userspace/lib/cpn_addr.c
WORKER_DEPS := $(WORKER_SRCS) gpu/worker.h $(KERNEL_HDRS) $(HDRS) $(KERNEL_SRCS) mk/worker.mk
WORKER_LIBS := $(KERNEL_LIBS) -lmicrohttpd -lpthread -lm
WORKER_ASAN := $(BUILD)/selftests/e2e/cpn-worker-asan
WORKER_KCHECK := $(BUILD)/selftests/e2e/worker_kcheck

ifneq ($(strip $(KERNEL_SRCS)),)
EXTRA_BINS  += $(BUILD)/cpn-worker
EXTRA_TESTS += $(WORKER_ASAN) $(WORKER_KCHECK)

$(BUILD)/cpn-worker: $(WORKER_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) $(WORKER_SRCS) $(KERNEL_SRCS) -o $@ $(WORKER_LIBS)

$(WORKER_ASAN): $(WORKER_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) $(SANITIZE) $(WORKER_SRCS) $(KERNEL_SRCS) -o $@ $(WORKER_LIBS)

$(WORKER_KCHECK): selftests/e2e/worker_kcheck.c $(KERNEL_HDRS) $(HDRS) $(KERNEL_SRCS) mk/worker.mk
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igpu $(CFLAGS) $(SANITIZE) $< $(KERNEL_SRCS) -o $@ $(KERNEL_LIBS) -lm
endif

.PHONY: worker
worker: $(BUILD)/cpn-worker $(WORKER_ASAN) $(WORKER_KCHECK)
