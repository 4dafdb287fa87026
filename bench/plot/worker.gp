# cpn-worker requests/s against --max-batch B (bench/bench-worker.sh).
# gnuplot -e "datafile='F'; outdir='D'; nseries=N; subtitle='S'" bench/plot/worker.gp
# datafile: one block per kernel/backend, its title on the block's first line;
# columns: B, req/s median min max, p50 us median min max, p99 us median min
# max, speedup over B=1 median min max.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1200,520 enhanced font "sans,10"
} else {
	set terminal png size 1200,520
}
set output outdir."/worker_throughput.png"
set multiplot layout 1,2 title "cpn-worker throughput against batch size\n{/*0.8 ".subtitle."}"
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
set grid
set key top left
set xlabel "--max-batch B"
set ylabel "requests/s (median; bars: min..max)"
set title "requests/s"
plot for [i=0:nseries-1] datafile index i using 1:2:3:4 with yerrorlines pt 7 lc (i + 1) \
	title columnheader(1)
unset logscale y
set logscale y 2
set ylabel "speedup over B=1 (same run)"
set title "speedup = req/s(B) / req/s(1)"
plot for [i=0:nseries-1] datafile index i using 1:11:12:13 with yerrorlines pt 7 lc (i + 1) \
	title columnheader(1), 1 with lines dt 2 lc rgb "gray" title "baseline B=1"
unset multiplot
