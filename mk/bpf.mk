# The BPF objects, next to their source, and their skeletons in $(BUILD).
#
#   bpf/cpn_router.bpf.o    the router (XDP): cpnctl embeds its skeleton
#   bpf/cpn_pass.bpf.o      XDP_PASS, for veth peers and as a baseline
#   bpf/cpn_floor.bpf.o     the benchmark floor
#   bpf/cpn_xsk.bpf.o       what cpn-fwd's net_af_xdp ports load at hand-off
#   tools/cpn-pktgen/cpn_sink.bpf.o   cpn-pktgen's counting sink
BPF_SRCS := $(wildcard bpf/*.bpf.c) tools/cpn-pktgen/cpn_sink.bpf.c
BPF_OBJS := $(BPF_SRCS:.bpf.c=.bpf.o)
SKELS    := $(patsubst %.bpf.c,$(BUILD)/%.skel.h,$(notdir $(wildcard bpf/*.bpf.c)))

# The path maps that CFLAGS carries (dpkg-buildflags' -ffile-prefix-map) go
# to the BPF objects too: clang writes the build directory into their debug
# information, and cpnctl embeds cpn_router.bpf.o, so without them a package
# would differ with the directory it was built in.
BPF_CFLAGS += $(filter -ffile-prefix-map=% -fdebug-prefix-map=%,$(CFLAGS))

%.bpf.o: %.bpf.c
	$(CLANG) $(BPF_CFLAGS) -I$(dir $<) -MMD -MP -MF $(BUILD)/bpfdeps/$(subst /,_,$@).d -c $< -o $@

$(BPF_OBJS): | $(BUILD)/bpfdeps

$(BUILD)/bpfdeps:
	@mkdir -p $@

$(BUILD)/%.skel.h: bpf/%.bpf.o
	@mkdir -p $(dir $@)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

.PHONY: skels
skels: $(SKELS)

all: $(BPF_OBJS)
