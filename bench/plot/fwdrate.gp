# Bar charts of bench/bench-fwdrate.sh, 1 and 2 cores, bars the medians over
# rounds and whiskers min..max. Left: Mpps received at the sink, what the
# shared CPUs gave. Right: Mpps received per CPU-second that the path used
# (generator, router and sink), the rate of a core of its own.
#
#   gnuplot -e "datafile='fwdrate.dat'; outfile='fwdrate.png'; term='pngcairo'; subtitle='...'" \
#           bench/plot/fwdrate.gp
#
# datafile: cores, then median min max of kernel, xdp, ceiling for Mpps
# received (columns 2-10) and for Mpps per CPU-second (columns 11-19).
if (!exists("term")) term = "pngcairo"
if (!exists("subtitle")) subtitle = ""
if (term eq "pngcairo") {
	set terminal pngcairo size 1200,600 font "sans,10" noenhanced
} else {
	set terminal png size 1200,600 noenhanced
}
set output outfile
set multiplot layout 1,2 title "cpn forwarding rate through a router namespace on veth, 90-byte cpn REQUESTs\n".subtitle
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key below
set xlabel "cores (generator threads = TX queues; generator included)"
set ylabel "Mpps received at the sink"
set title "rate on the shared CPUs"
plot datafile using 2:3:4:xtic(sprintf("%d", $1)) title "kernel ip_forward (baseline)" lc rgb "#888888", \
     '' using 5:6:7 title "cpn XDP steering (p2c, DNAT, redirect)" lc rgb "#1f77b4", \
     '' using 8:9:10 title "ceiling: generator + veth, drop at router ingress" lc rgb "#dddddd"
set ylabel "Mpps received per CPU-second used"
set title "rate per CPU-second of the path"
plot datafile using 11:12:13:xtic(sprintf("%d", $1)) title "kernel ip_forward (baseline)" lc rgb "#888888", \
     '' using 14:15:16 title "cpn XDP steering (p2c, DNAT, redirect)" lc rgb "#1f77b4", \
     '' using 17:18:19 title "ceiling: generator + veth, drop at router ingress" lc rgb "#dddddd"
unset multiplot
