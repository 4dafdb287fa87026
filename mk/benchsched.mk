# bench-sched: scheduling quality on the netns testbed, every policy against
# the M/M/k optimum and M/M/1 (tools/bench-sched.sh); part of `make bench`
# through tools/bench-all.sh; alone:
.PHONY: bench-sched
bench-sched: $(BUILD)/cpnctl $(BUILD)/cpn-worker $(BUILD)/cpn-load $(BUILD)/cpn-mmk $(BUILD)/cpn-sim \
		bpf/cpn_pass.bpf.o
	tools/bench-sched.sh --json-out docs/bench/sched.json --plot-dir docs/bench
