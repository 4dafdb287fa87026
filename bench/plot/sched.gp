# Scheduling quality against load (bench/bench-sched.sh): p99 and p99.9 of
# the response time, in multiples of the mean service time, per policy, next
# to M/M/k (the optimum: one central queue) and M/M/1 (random assignment).
# gnuplot -e "datadir='D'; outdir='O'; npol=N; subtitle='S'" bench/plot/sched.gp
# datadir/homog.dat: one block per policy, its name on the block's first line;
#   columns: rho, p99 median min max, p99.9 median min max, cpn-sim p99,
#   cpn-sim p99.9 (NaN without it).
# datadir/theory.dat: rho; at the nominal mean: M/M/k p99, M/M/1 p99, M/M/k
#   p99.9, M/M/1 p99.9; then the same at the measured effective mean.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1300,560 enhanced font "sans,10"
} else {
	set terminal png size 1300,560
}
set output outdir."/sched_p99.png"
set multiplot layout 1,2 title "Response time against load, policies and theory\n{/*0.8 ".subtitle."}"
set logscale y
set grid
set key top left
set xlabel "load rho (offered rate / total capacity)"
set ylabel "response time / mean service time"
set yrange [1:*]
# One colour per policy or system, in the order of homog.dat's blocks.
colors = "#9400d3 #009e73 #56b4e9 #e69f00 #d55e00 #000080 #808000 #cc79a7 #0072b2 #8b4513 #2f4f4f"
th = datadir."/theory.dat"
hd = datadir."/homog.dat"
set title "p99"
plot for [i=0:npol-1] hd index i using 1:2:3:4 with yerrorlines pt 7 lc rgb word(colors, i + 1) title columnheader(1), \
	for [i=0:npol-1] hd index i using 1:8 with points pt 6 ps 1.5 lc rgb word(colors, i + 1) notitle, \
	NaN with points pt 6 ps 1.5 lc rgb "black" title "open: cpn-sim, same policy", \
	th using 1:6 with lines lw 2 lc rgb "black" title "M/M/k (optimum), measured mean", \
	th using 1:2 with lines dt 2 lc rgb "black" title "M/M/k, nominal mean", \
	th using 1:7 with lines lw 2 lc rgb "gray50" title "M/M/1 (random), measured mean", \
	th using 1:3 with lines dt 2 lc rgb "gray50" title "M/M/1, nominal mean"
set title "p99.9"
plot for [i=0:npol-1] hd index i using 1:5:6:7 with yerrorlines pt 7 lc rgb word(colors, i + 1) title columnheader(1), \
	for [i=0:npol-1] hd index i using 1:9 with points pt 6 ps 1.5 lc rgb word(colors, i + 1) notitle, \
	NaN with points pt 6 ps 1.5 lc rgb "black" title "open: cpn-sim, same policy", \
	th using 1:8 with lines lw 2 lc rgb "black" title "M/M/k (optimum), measured mean", \
	th using 1:4 with lines dt 2 lc rgb "black" title "M/M/k, nominal mean", \
	th using 1:9 with lines lw 2 lc rgb "gray50" title "M/M/1 (random), measured mean", \
	th using 1:5 with lines dt 2 lc rgb "gray50" title "M/M/1, nominal mean"
unset multiplot
