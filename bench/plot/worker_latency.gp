# cpn-worker REPLY latency (p50, p99) against --max-batch B, closed loop with
# C = 2B+4 outstanding (bench/bench-worker.sh; same data file as worker.gp).
# gnuplot -e "datafile='F'; outdir='D'; nseries=N; subtitle='S'" bench/plot/worker_latency.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 800,520 enhanced font "sans,10"
} else {
	set terminal png size 800,520
}
set output outdir."/worker_latency.png"
set title "cpn-worker latency against batch size (closed loop, C = 2B+4)\n{/*0.8 ".subtitle."}"
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
set grid
set key top left
set xlabel "--max-batch B"
set ylabel "REPLY latency, us (median of runs; bars: min..max)"
plot for [i=0:nseries-1] datafile index i using 1:5:6:7 with yerrorlines pt 7 lc (i + 1) \
	title sprintf("p50 %s", columnhead(1)), \
	for [i=0:nseries-1] datafile index i using 1:8:9:10 with yerrorlines pt 5 dt 2 lc (i + 1) \
	title sprintf("p99 %s", columnhead(1))
