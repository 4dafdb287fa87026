# Heterogeneous fleet (bench/bench-sched.sh): the share of requests each
# worker got per policy, next to its share of the capacity, and p99.
# gnuplot -e "datadir='D'; outdir='O'; timeout_ms=T" bench/plot/sched_hetero.gp
# datadir/hetero.dat: a header line (worker names), then per row: label,
#   share of workers 1..4 (first row: the share of the capacity).
# datadir/hetero_p99.dat: per policy: label, p99 ms median min max, share
#   of the requests without a REPLY (lost or BUSY), %.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1300,520 enhanced font "sans,10"
} else {
	set terminal png size 1300,520
}
set output outdir."/sched_hetero.png"
hd = datadir."/hetero.dat"
set multiplot layout 1,2 title "Heterogeneous fleet: share of requests per worker and p99"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top right
set yrange [0:1]
set ylabel "share of requests steered"
set title "share per worker (first group: share of the capacity)"
plot for [c=2:5] hd using c:xtic(1) title columnheader(c)
set title "p99 per policy (bars: min..max; at the timeout: censored)"
unset style data
set style fill solid 0.5 border -1
set logscale y
set yrange [*:timeout_ms * 2]
set ylabel "p99 response time, ms"
set xrange [-0.5:*]
set boxwidth 0.6
set key top left
hp = datadir."/hetero_p99.dat"
plot hp using 0:2:xtic(1) with boxes lc rgb "steelblue" notitle, \
	hp using 0:2:3:4 with yerrorbars lc rgb "black" pt 0 notitle, \
	hp using 0:($5 > 0 ? $2 * 1.25 : NaN):(sprintf("%.0f %% unanswered", $5)) with labels notitle, \
	timeout_ms with lines dt 2 lc rgb "red" title "timeout (requests lost beyond it)"
unset multiplot
