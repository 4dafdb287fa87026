# cpn-sim: p99 response time against the number of routers, one panel per
# view-update mode, one line per policy (error bars: min and max over the
# repeats). Input: the table of `cpn-sim --table-out`.
#
#   gnuplot -e "datafile='sim.dat'; outfile='sim_p99.png'; npol=5; \
#               modes='reports outstanding router'; mm1=23.03; central=4.62" \
#           bench/plot/sim.gp
#
# npol: policies per mode in the table; mm1: the M/M/1 p99 (random
# assignment, theory); central: the measured p99 of one central queue per
# service (M/M/k, the ideal). Both are drawn as horizontal references.
if (!exists("datafile")) datafile = 'sim.dat'
if (!exists("outfile")) outfile = 'sim_p99.png'
if (!exists("npol")) npol = 5
if (!exists("modes")) modes = 'reports outstanding router'
if (!exists("mm1")) mm1 = NaN
if (!exists("central")) central = NaN
if (!exists("subtitle")) subtitle = ''

nm = words(modes)
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
	set terminal pngcairo size 520*nm,480 font ',10'
} else {
	set terminal png size 520*nm,480
}
set output outfile

mtitle(m) = m eq 'reports' ? 'LOAD reports only (outstanding off)' : \
	    m eq 'outstanding' ? 'reports + outstanding (on)' : \
	    'as router.h: + load on every REPLY'

set multiplot layout 1,nm title 'cpn-sim: p99 response time vs routers '.subtitle
set logscale x
set logscale y
set xlabel 'routers'
set ylabel 'p99 / mean service time'
set grid
set key bottom right font ',9'
# One y range for every panel, from 1 to the decade above the largest p99.
stats datafile using 5 nooutput
set yrange [1:10**ceil(log10(STATS_max > 10 ? STATS_max * 1.1 : 10))]
set offsets graph 0.05, graph 0.05, 0, 0
do for [m = 1:nm] {
	set title mtitle(word(modes, m))
	plot for [i = (m - 1) * npol : m * npol - 1] datafile index i using 1:3:4:5 \
		with yerrorlines lw 2 pt 7 title columnheader(1), \
	     mm1 with lines dt 2 lc rgb 'gray40' title 'M/M/1 (theory)', \
	     central with lines dt 3 lc rgb 'black' title 'central queue (M/M/k)'
}
unset multiplot
