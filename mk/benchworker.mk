# bench-worker: cpn-worker requests/s against batch size (tools/bench-worker.sh),
# part of `make bench` through tools/bench-all.sh; alone:
.PHONY: bench-worker
bench-worker: $(BUILD)/cpn-worker $(BUILD)/cpn-load
	tools/bench-worker.sh --json-out docs/bench/worker.json --plot-dir docs/bench
