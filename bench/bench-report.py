#!/usr/bin/env python3
"""bench-report: turn the JSON of each benchmark (bench/bench-all.sh's work
directory) into bench/results.json, the plots that the benchmarks do not draw
themselves (gnuplot, PNG), and docs/BENCHMARKS.md.

Every section says the command that produced it, its mode and wall time, and
shows each figure next to the baseline measured in the same run. The prose
that explains a section (method, why a target is or is not met) lives in
bench/notes/<name>.md and is copied under the section's tables.
"""
import argparse
import datetime
import json
import os
import re
import platform
import subprocess
import sys

ORDER = ["sched", "sim", "fleet", "xdp", "insns", "fwdrate", "latency", "fwd", "worker", "model", "seal"]
TITLES = {
    "sched": "Scheduling quality on the testbed (the headline)",
    "sim": "Scale, by simulation (cpn-sim)",
    "fleet": "Many routers on the testbed: three behind ECMP against one",
    "xdp": "Router cost per packet (XDP)",
    "insns": "Router cost per packet: BPF instructions and map lookups",
    "fwdrate": "Forwarding rate through the router (veth, XDP vs kernel)",
    "latency": "Latency the router adds",
    "fwd": "DPDK forwarder (cpn-fwd vs dpdk-testpmd)",
    "worker": "Worker throughput against batch size",
    "model": "A real model through the router: ResNet-18, batch 1 and 16",
    "seal": "Sealed payloads: what end-to-end encryption costs",
}


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.0f GiB" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    u = platform.uname()
    return {"uname": "%s %s %s" % (u.system, u.release, u.machine), "nproc": os.cpu_count(),
            "cpu": cpu, "memory": mem, "loadavg_at_report": open("/proc/loadavg").read().split()[:3]}


def fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if isinstance(v, int) or float(v).is_integer() and abs(v) >= 100:
            return "%d" % v
        if abs(v) >= 1000:
            return "%.0f" % v
        return ("%." + str(nd) + "f") % v
    return str(v)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) for c in r) + " |")
    return "\n".join(out)


def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return True
    except (OSError, subprocess.SubprocessError) as e:
        print("bench-report: gnuplot: %s" % e, file=sys.stderr)
        return False


def terminal():
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, timeout=20)
        if b"pngcairo" in r.stdout + r.stderr:
            return "pngcairo size 900,520 font ',10'"
    except (OSError, subprocess.SubprocessError):
        pass
    return "png size 900,520"


def plot_bars(path, title, ylabel, labels, series, work):
    """series: [(name, [values per label])]"""
    dat = os.path.join(work, os.path.basename(path) + ".dat")
    with open(dat, "w") as f:
        for i, lab in enumerate(labels):
            f.write('"%s" %s\n' % (lab, " ".join("%g" % s[1][i] for s in series)))
    cols = " , ".join("'%s' using %d:xtic(1) title '%s'" % (dat, i + 2, s[0])
                      for i, s in enumerate(series))
    return gnuplot("""set terminal %s noenhanced
set output '%s'
set title '%s'
set ylabel '%s'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top left
plot %s
""" % (terminal(), path, title, ylabel, cols))


# ---- sections -------------------------------------------------------------

def sec_xdp(d, plots, work):
    paths = d.get("paths", [])
    by = {p["path"]: p for p in paths}
    floor = by.get("floor", {}).get("ns_per_pkt_median")
    rows = []
    for p in paths:
        ns = p["ns_per_pkt_median"]
        rows.append([p["path"], ns, p.get("ratio_to_trivial"), ns / floor if floor else None,
                     p.get("wall_ns_per_call")])
    md = [table(["path", "ns/packet (median of rounds)", "× trivial", "× floor",
                 "wall ns/call"], rows)]
    req = by.get("request", {}).get("ratio_to_trivial")
    if req is not None:
        md.append("\nTarget REQUEST ≤ 2.5 × trivial: **%s** (%.2f ×)." %
                  ("met" if req <= 2.5 else "not met", req))
    png = os.path.join(plots, "xdp_cost.png")
    if paths and plot_bars(png, "XDP router cost per packet (BPF_PROG_TEST_RUN, repeat=1)",
                           "ns per packet", [p["path"] for p in paths],
                           [("median ns", [p["ns_per_pkt_median"] for p in paths])], work):
        md.append("\n![XDP cost per packet](bench/xdp_cost.png)")
    summary = {"request_x_trivial": req,
               "request_x_floor": (by["request"]["ns_per_pkt_median"] / floor)
               if floor and "request" in by else None}
    return "\n".join(md), summary


def sec_fwd(d, plots, work):
    res = d.get("results", [])
    rows = [[r["prog"], r["mpps_median"], "%s" % ", ".join("%.2f" % x for x in r.get("mpps_runs", [])),
             r["mpps_median"] / res[0]["mpps_median"] if res and res[0]["mpps_median"] else None]
            for r in res]
    md = [table(["program", "Mpps (median)", "runs", "× cpn-fwd"], rows)]
    md.append("\ncpn-fwd / testpmd 5tswap = **%s**, target ≥ 0.7: **%s**; cpn-fwd / testpmd io = %s."
              % (fmt(d.get("ratio_vs_5tswap")),
                 "met" if d.get("target_0_7_x_5tswap_met") else "not met",
                 fmt(d.get("ratio_vs_io"))))
    ir = d.get("ir")
    if ir:
        md.append("\nInstructions per request (callgrind, Ir in `fwd_burst` over %d requests, "
                  "deterministic): **%.0f**; by source file: %s."
                  % (ir["requests"], ir["per_request"],
                     ", ".join("%s %.0f" % (k, v) for k, v in ir.get("by_file", {}).items())))
    md.append("\nCommands (prefix and temporary paths as they ran):\n")
    for r in res:
        md.append("    " + r.get("command", ""))
    if ir:
        md.append("    " + ir.get("command", ""))
    png = os.path.join(plots, "fwd_mpps.png")
    if res and plot_bars(png, "Mpps on one lcore (net_pcap infinite_rx -> net_null)", "Mpps",
                         [r["prog"] for r in res], [("median", [r["mpps_median"] for r in res])],
                         work):
        md.append("\n![cpn-fwd vs testpmd](bench/fwd_mpps.png)")
    return "\n".join(md), {"ratio_vs_5tswap": d.get("ratio_vs_5tswap"),
                           "target_met": d.get("target_0_7_x_5tswap_met"),
                           "ir_per_request": ir["per_request"] if ir else None}


def sec_sim(d, plots, work):
    res = d.get("results", [])
    pols = []
    for r in res:
        if r["policy"] not in pols:
            pols.append(r["policy"])
    modes = [m for m in ("reports", "outstanding", "router") if any(r["mode"] == m for r in res)]
    routers = sorted({r["routers"] for r in res if r["mode"] != "none"})
    idx = {(r["policy"], r["mode"], r["routers"]): r for r in res}
    head = ["policy"] + ["%s R=%d" % (m, n) for m in modes for n in routers]
    rows = []
    for p in pols:
        if p == "central":
            continue
        row = [p]
        for m in modes:
            for n in routers:
                r = idx.get((p, m, n))
                row.append(r["p99"] if r else None)
        rows.append(row)
    th = d.get("theory", {})
    md = ["p99 in units of the mean service time, median of %s seeds (spread in results.json), "
          "%s nodes, ρ = %s, load reports every %s ms. R = routers, each with its own view." %
          (d.get("params", {}).get("repeats"), d.get("params", {}).get("nodes"),
           d.get("params", {}).get("rho"), d.get("params", {}).get("report_ms")),
          "", table(head, rows), ""]
    c = idx.get(("central", "none", 1))
    md.append("Baselines in the same run: one central FCFS queue per service (the M/M/k ideal) "
              "p99 = %s (theory %s), random = %s (M/M/1 theory %s)." %
              (fmt(c["p99"]) if c else "–", fmt(th.get("mmk_group", {}).get("p99")),
               fmt(res[0]["baseline_random"]["p99"]) if res and "baseline_random" in res[0] else "–",
               fmt(th.get("mm1", {}).get("p99"))))
    v = d.get("validation", {})
    if v:
        md.append("\nSimulator against theory (k = %s, ρ = %s): largest relative error %.2f %% "
                  "(limit %.0f %%): **%s**." %
                  (v.get("k"), v.get("rho"),
                   100 * max(ch["rel_err"] for ch in v.get("checks", [{"rel_err": 0}])),
                   100 * v.get("tolerance", 0.05), "pass" if v.get("pass") else "FAIL"))
        md.append("")
        md.append(table(["model", "theory", "figure", "simulated", "theory value", "rel. error"],
                        [[ch["model"], ch["theory"], ch["figure"], ch["sim"], ch["theory_value"],
                          "%.2f %%" % (100 * ch["rel_err"])] for ch in v.get("checks", [])]))
    if os.path.exists(os.path.join(plots, "sim_p99.png")):
        md.append("\n![cpn-sim p99 against routers](bench/sim_p99.png)")
    if d.get("late_binding"):
        md.append("\n" + sim_late(d["late_binding"]))
    return "\n".join(md), {"validation_pass": v.get("pass") if v else None}


def sim_late(m):
    """bench-sim's late-binding part: p50 / p99 per policy and point."""
    t = m.get("table", [])
    pols = []
    for p in t:
        if p["policy"] not in pols:
            pols.append(p["policy"])

    def cell(p):
        return "%.2f / %.2f" % (p["p50"], p["p99"]) if p else None

    def find(part, pol, **kw):
        for p in t:
            if p["part"] == part and p["policy"] == pol and \
                    all(p.get(k) == v for k, v in kw.items()):
                return p
        return None

    out = ["**Late binding** (`dispatch: late`, JBSQ(n) of include/cpn/late.h: late1, late2) "
           "next to the central queue and early binding; p50 / p99 in mean service times, a "
           "held request's from its arrival at the router. Commands:", ""]
    out += ["    " + c for c in m.get("commands", [])]
    rhos = sorted({p["rho"] for p in t if p["part"] == "k8"})
    mmk = {x["rho"]: x for x in m.get("mmk", [])}
    rows = [["M/M/8 (theory)", "–"] + ["%.2f / %.2f" % (mmk[r]["p50"], mmk[r]["p99"])
                                       if r in mmk else None for r in rhos]]
    for pol in pols:
        for mode in (("none",) if pol == "central" else ("reports", "router")):
            rows.append([pol, mode] + [cell(find("k8", pol, mode=mode, rho=r)) for r in rhos])
    out += ["", "k = 8 nodes, one router, exact views (`--report-ms 0`):", "",
            table(["policy", "mode"] + ["ρ %g" % r for r in rhos], rows)]
    cols = sorted({(p["report_ms"], p["routers"]) for p in t
                   if p["part"] == "routers" and p["routers"]})
    if cols:
        rows = []
        for pol in pols:
            row = [pol]
            for rms, R in cols:
                p = find("routers", pol, report_ms=rms,
                         routers=None if pol == "central" else R)
                row += [cell(p), p["max_queue"] if p else None]
            rows.append(row)
        head = ["policy"]
        for rms, R in cols:
            head += ["R=%d, %s" % (R, "exact" if not rms else "LOADs %g ms" % rms), "max queue"]
        out += ["", "100 nodes, ρ 0.8, mode router (max queue: at a node; the central "
                "queue's own):", "", table(head, rows)]
    pus = sorted({p["path_us"] for p in t if p["part"] == "path"})
    if pus:
        rows = []
        for pol in pols:
            row = [pol]
            for pu in pus:
                p = find("path", pol, path_us=pu)
                row += [cell(p), "%.3f" % p["refused"] if p else None]
            rows.append(row)
        head = ["policy"] + [x for pu in pus for x in ("round trips ≤ %g µs" % pu, "refused")]
        out += ["", "k = 8, one router, exact views, ρ 0.8, node round trips uniform in "
                "[0, X] (mean service time %g µs):" % m.get("params", {}).get("mean_us", 0), "",
                table(head, rows)]
    return "\n".join(out)


def sec_sim_many(d, plots, work):
    m = d["many_routers"]
    pr = m.get("params", {})
    table_rows = m.get("table", [])

    def tri(p):
        return "%.2f / %.2f / %.2f" % (p["p50"], p["p99"], p["p999"])

    def msgs(p):
        return "%.3f" % p["msgs_per_req"] if p.get("msgs_per_req") is not None else "–"

    out = ["%s nodes in one service, service times exponential, Poisson arrivals at ρ; each of R "
           "routers decides from its own view (as router.h: the load on every reply it "
           "forwards, its own count of requests sent). Router load uniform, or skewed: %s. "
           "Figures in mean service times, median of %s seeds (min..max in results.json); "
           "messages: those beyond each request and its reply, per request. p2c learns "
           "load from LOADs every %s ms to every router; jiq, jiq-rand and p2c-probe use "
           "LOADs for liveness only: one to a router the node has sent nothing for %s ms "
           "(stale after %s ms). Token store: %s per service, %s tries, trusted for %s "
           "service times; node rule `%s`." %
           (pr.get("nodes"), m.get("skewed"), pr.get("repeats"), pr.get("report_ms"),
            pr.get("liveness_ms"), pr.get("liveness_stale_ms"), pr.get("token_store"),
            pr.get("token_tries"), pr.get("token_ttl_svc"), pr.get("token_rule")), "",
           "Commands (each a separate run):", ""]
    out += ["    " + c for c in m.get("commands", [])]
    tg = m.get("targets", [])
    if tg:
        out += ["", table(["target", "measured", "met"],
                          [[t["what"], t["measured"], t["met"]] for t in tg])]
    rhos = sorted({p["rho"] for p in table_rows})
    routers = sorted({p["routers"] for p in table_rows if p["routers"]})
    pols = []
    for p in table_rows:
        if p["policy"] not in pols and p["policy"] != "central":
            pols.append(p["policy"])
    idx = {(p["policy"], p["routers"], p["rho"], p["load"]): p for p in table_rows}
    big = routers[-1] if routers else None
    # the summary: p99 at the most routers
    loads = [("uniform", "skewed")] * len(pols) + [("uniform",)]
    if big:
        rows = []
        for pol, pl in zip(pols + ["central"], loads):
            for load in pl:
                row = [pol, load if pol != "central" else "–"]
                for rho in rhos:
                    p = idx.get((pol, None if pol == "central" else big, rho, load))
                    row += [p["p99"] if p else None, msgs(p) if p else None]
                rows.append(row)
        out += ["", "**p99 at %d routers** (and extra messages per request):" % big, "",
                table(["policy", "router load"] + [x for rho in rhos
                                                   for x in ("ρ %g p99" % rho, "msgs")], rows)]
    for rho in rhos:
        rows = []
        for pol, pl in zip(pols + ["central"], loads):
            for load in pl:
                row = [pol, load if pol != "central" else "–"]
                for R in routers:
                    p = idx.get((pol, None if pol == "central" else R, rho, load))
                    row += [tri(p) if p else None, msgs(p) if p else None,
                            "%.2f" % p["by_token"] if p and p.get("by_token") else "–"]
                rows.append(row)
        head = ["policy", "router load"]
        for R in routers:
            head += ["R=%d p50 / p99 / p99.9" % R, "msgs", "by token"]
        out += ["", "**ρ = %g**" % rho, "", table(head, rows)]
    rl = m.get("node_rule", [])
    if rl:
        rrhos = sorted({p["rho"] for p in rl})
        rrouters = sorted({p["routers"] for p in rl})
        rules = []
        for p in rl:
            if p["rule"] not in rules:
                rules.append(p["rule"])
        ri = {(p["rule"], p["routers"], p["rho"]): p for p in rl}
        rows = []
        for R in rrouters:
            for r in rules:
                row = [r, R]
                for rho in rrhos:
                    p = ri.get((r, R, rho))
                    row += [tri(p) if p else None, msgs(p) if p else None,
                            "%.2f" % p["waited"] if p else None]
                rows.append(row)
        head = ["node rule", "routers"] + [x for rho in rrhos for x in
                                           ("ρ %g p50 / p99 / p99.9" % rho, "msgs", "waited")]
        out += ["", "**jiq's node rule** (uniform load): `idle` marks a reply when the node "
                "falls idle (JIQ), `below:T` when it holds fewer than T requests after the "
                "completion, `adapt` T = 2 while more than a tenth of the node's requests "
                "waited, else 1. *waited*: share of requests that found their node busy.",
                "", table(head, rows)]
    het = m.get("hetero", [])
    if het:
        rows = [[p["policy"], p["routers"] or "–", tri(p), msgs(p)] for p in het]
        out += ["", "**Heterogeneous nodes**, relative speeds %s (a uniform mix, scaled so "
                "that the mean service time over the fleet's capacity is the unit), ρ = %g." %
                ("/".join("%g" % x for x in het[0].get("speeds", [])), het[0]["rho"]), "",
                table(["policy", "routers", "p50 / p99 / p99.9", "msgs"], rows)]
    dl = m.get("delays", [])
    if dl:
        rows = []
        for p in dl:
            what = ("reply +%g mean service times" % (p["reply_us"] / p["mean_us"])
                    if p["reply_us"] else "token usable %g mean service times after the reply"
                    % (p["token_us"] / p["mean_us"]))
            rows.append([what, p["policy"], p["routers"], tri(p), msgs(p)])
        out += ["", "**Delays**, ρ = %g, uniform load: a reply (with the load and token it "
                "carries) reaching the router later, which also adds to the response time; or "
                "only the token usable later." % dl[0]["rho"], "",
                table(["delay", "policy", "routers", "p50 / p99 / p99.9", "msgs"], rows)]
    for png in m.get("plots", []):
        if os.path.exists(os.path.join(plots, png)):
            out.append("\n![cpn-sim, many routers](bench/%s)" % png)
    return "\n".join(out), {"targets": tg}


# Sections drawn from part of another benchmark's result: after that
# benchmark's section, (key in its JSON, title, renderer, notes file).
SUBSECTIONS = {
    "sim": [("many_routers", "Many routers, by simulation (cpn-sim)", sec_sim_many, "sim_many")],
}


def sec_worker(d, plots, work):
    md = []
    rows = []
    for r in d.get("results", []):
        if r.get("status") != "ok":
            md.append("- %s on %s: **%s** — %s" % (r.get("kernel"), r.get("backend"),
                                                   r.get("status"), r.get("reason", "")))
            continue
        for pt in r.get("points", []):
            rows.append(["%s/%s" % (r["kernel"], r["backend"]), pt["B"], pt["req_s"]["median"],
                         "%.0f..%.0f" % (pt["req_s"]["min"], pt["req_s"]["max"]),
                         pt["speedup"]["median"], pt["mean_batch"]["median"],
                         pt["p50_us"]["median"], pt["p99_us"]["median"]])
    ob = d.get("openblas", {})
    head = ["kernel/backend", "max batch B", "req/s (median)", "req/s min..max",
            "× B=1 (baseline)", "mean batch", "p50 µs", "p99 µs"]
    out = ["Device: %s. OpenBLAS kernels: %s, %s thread(s) per call. Median of %s runs." %
           (", ".join(sorted({r.get("device", "?") for r in d.get("results", [])
                              if r.get("status") == "ok"})),
            ob.get("corename"), ob.get("threads_per_call"), d.get("method", {}).get("runs")),
           "", table(head, rows)]
    if md:
        out += [""] + md
    for png in ("worker_throughput.png", "worker_latency.png"):
        if os.path.exists(os.path.join(plots, png)):
            out.append("\n![%s](bench/%s)" % (png, png))
    best = {}
    for r in rows:
        best[r[0]] = max(best.get(r[0], 0), r[4])
    return "\n".join(out), {"best_speedup": best}


def gpu_runs(gpu_dir):
    """The worker benchmarks run on a GPU machine by bench/gpu-check.sh and
    kept in bench/gpu/ (a machine without a GPU cannot make them): name ->
    bench-worker JSON."""
    runs = {}
    if os.path.isdir(gpu_dir):
        for f in sorted(os.listdir(gpu_dir)):
            if f.endswith(".json"):
                with open(os.path.join(gpu_dir, f)) as fh:
                    runs[f[:-5]] = json.load(fh)
    return runs


def gpu_pairs(d):
    """(kernel, B) -> {backend: point} of one bench-worker run."""
    pts = {}
    for r in d.get("results", []):
        if r.get("status") != "ok":
            continue
        for pt in r["points"]:
            if pt.get("req_s"):
                pts.setdefault((r["kernel"], pt["B"]), {})[r["backend"]] = pt
    return pts


def sec_worker_gpu(runs, gpu_dir):
    out = []
    first = next(iter(runs.values()))
    m = first.get("machine", {})
    out.append("Measured on a machine lent with a GPU, not by `make bench` (no GPU here): "
               "`bench/gpu-check.sh` there, the JSON kept in `bench/gpu/`, and this section "
               "rendered from it. GPU: **%s**. Host: %s, %s CPUs. Each table's CPU and CUDA "
               "columns come from one run of `bench/bench-worker.sh` (the same worker, "
               "`--capacity 1`, closed loop C = 2B+4 on 127.0.0.1, fresh worker per point); "
               "the CPU backend runs OpenBLAS with one thread."
               % (", ".join(m.get("gpu", [])) or "?", m.get("cpu_model", "?"), m.get("nproc", "?")))
    tests = os.path.join(gpu_dir, "h200-tests.txt")
    if os.path.exists(tests):
        with open(tests) as fh:
            tap = [l.strip() for l in fh if re.match(r"(not )?ok \d", l)]
        bad = [l for l in tap if l.startswith("not ok")]
        out.append("")
        out.append("The CUDA suite there (`selftests/e2e/test_cuda.sh`, CUDA against the CPU "
                   "backend on every shape, and `test_kernels`' backend choice): %d checks, "
                   "%d failed; the output is in `bench/gpu/h200-tests.txt`." % (len(tap), len(bad)))
    summ = {}
    for name, title in (("h200-worker-default", "Default models"),
                        ("h200-worker-large", "Large models")):
        d = runs.get(name)
        if not d:
            continue
        rows = []
        for (k, b), pt in sorted(gpu_pairs(d).items()):
            c, g = pt.get("cpu"), pt.get("cuda")
            if not c or not g:
                continue
            ratio = g["req_s"]["median"] / c["req_s"]["median"]
            rows.append([k, b, c["req_s"]["median"], g["req_s"]["median"], "%.1f×" % ratio,
                         c["p99_us"]["median"], g["p99_us"]["median"]])
            summ["%s/%s/B%d" % (name, k, b)] = round(ratio, 2)
        ob = d.get("openblas", {})
        out += ["", "### %s: %s" % (title, "; ".join("%s %s" % (k, v) for k, v in
                                                    d["method"]["models"].items())), "",
                "`%s` (by `%s`), %s; OpenBLAS kernels %s. Median of %s run(s)." %
                (d["command"], d.get("run_by", "?"), d.get("date", "?"), ob.get("corename"),
                 d["method"]["runs"]), "",
                table(["kernel", "B", "CPU req/s", "CUDA req/s", "CUDA ÷ CPU", "CPU p99 µs",
                       "CUDA p99 µs"], rows)]
    d = runs.get("h200-worker-saturation")
    if d:
        rows = []
        for (k, b), pt in sorted(gpu_pairs(d).items()):
            g = pt.get("cuda")
            if g:
                rows.append([k, b, g["req_s"]["median"], g["p50_us"]["median"],
                             g["p99_us"]["median"], g["mean_batch"]["median"]])
        out += ["", "### Where the GPU saturates (large models, CUDA only)", "",
                "`%s` (by `%s`), %s." % (d["command"], d.get("run_by", "?"), d.get("date", "?")),
                "", table(["kernel", "B", "CUDA req/s", "p50 µs", "p99 µs", "mean batch"], rows)]
    return "\n".join(out), summ


def sec_fwdrate(d, plots, work):
    rows = []
    summ = {}
    for r in d.get("results", []):
        for path in ("xdp", "kernel", "ceiling"):
            x = r.get(path)
            if not x:
                continue
            rows.append([r["cores"], path, x["rx_mpps"]["median"],
                         "%.3f..%.3f" % (x["rx_mpps"]["min"], x["rx_mpps"]["max"]),
                         x["rx_mpps_per_cpu"]["median"], x["cpu_share_pct"]["median"],
                         x["drop_pct"]["median"]])
        summ["cores_%d" % r["cores"]] = {"xdp_over_kernel": r.get("ratio_xdp_over_kernel"),
                                          "xdp_over_kernel_per_cpu":
                                          r.get("ratio_xdp_over_kernel_per_cpu")}
    out = ["%d-byte cpn REQUEST frames from `cpn-pktgen` (AF_XDP TX, copy mode); %s rounds of %s s. "
           "Cores: %s Baseline: %s." % (d.get("frame_len", 0), d.get("rounds"), d.get("window_s"),
                                        d.get("cores_meaning", ""), d.get("baseline", "")), "",
           table(["cores", "path", "Mpps received (median)", "min..max", "Mpps per CPU-second",
                  "CPU share %", "drop %"], rows), ""]
    for r in d.get("results", []):
        out.append("- %d core(s): XDP ÷ kernel = %s raw, **%s per CPU-second**." %
                   (r["cores"], fmt(r.get("ratio_xdp_over_kernel"), 3),
                    fmt(r.get("ratio_xdp_over_kernel_per_cpu"), 3)))
    if d.get("generator_command"):
        out.append("\nGenerator: `%s`" % d["generator_command"])
    if os.path.exists(os.path.join(plots, "fwdrate.png")):
        out.append("\n![forwarding rate](bench/fwdrate.png)")
    if d.get("problems"):
        out.append("\nProblems: " + "; ".join(map(str, d["problems"])))
    return "\n".join(out), summ


def sec_latency(d, plots, work):
    """The router's added latency: both paths' p50 and p99 over the rounds,
    the difference of the medians and the spread of the per-round pairs."""
    paths, added = d["paths"], d["added_us"]
    rows = []
    for p in ("router", "direct"):
        x = paths[p]
        rows.append([p, "%s (%s..%s)" % (fmt(x["p50_us"]["median"]), fmt(x["p50_us"]["min"]),
                                         fmt(x["p50_us"]["max"])),
                     "%s (%s..%s)" % (fmt(x["p99_us"]["median"]), fmt(x["p99_us"]["min"]),
                                      fmt(x["p99_us"]["max"])),
                     fmt(x["p999_us"]["median"]), fmt(x["mean_us"]["median"]),
                     fmt(x["min_us"]["median"]) if "min_us" in x else None, x["replied"],
                     x.get("busy", 0), x["lost"]])
    md = ["%d round(s) of each path, alternated (%s), each %g s measured after %g s of warmup; "
          "%d req/s, %s arrivals, %d-byte echo payload; one `cpn-worker %s` (no --hop-key), "
          "no path delay; client and worker pinned to CPU %s of %s. Latencies in µs, median over "
          "the rounds (min..max). Load average %s before, %s after." %
          (d["rounds"], d["order"], d["duration_s"], d["warmup_s"], d["rate"], d["arrivals"],
           d["payload_bytes"], d["worker_args"], d.get("cpu", "?"), d.get("nproc", "?"),
           " ".join(d.get("loadavg", {}).get("before", ["?"])),
           " ".join(d.get("loadavg", {}).get("after", ["?"]))), "",
          "- router: %s" % d["compared"]["router"],
          "- direct: %s" % d["compared"]["direct"], "",
          table(["path", "p50 µs", "p99 µs", "p99.9 µs", "mean µs", "min µs", "replied", "busy",
                 "lost"], rows), "",
          table(["added by the router", "router − direct (difference of medians)",
                 "per round pair: median", "quartiles", "min..max"],
                [[q, "%+.2f µs" % added[k]["diff_of_medians"],
                  "%+.2f" % added[k]["pairs"]["median"],
                  "%+.2f..%+.2f" % (added[k]["pairs"].get("q1", added[k]["pairs"]["min"]),
                                    added[k]["pairs"].get("q3", added[k]["pairs"]["max"])),
                  "%+.2f..%+.2f" % (added[k]["pairs"]["min"], added[k]["pairs"]["max"])]
                 for q, k in (("p50", "p50_us"), ("p99", "p99_us"), ("min", "min_us"))
                 if k in added]), "",
          "Goal: the router adds less than %g µs to the p50: **%s** (%+.2f µs)." %
          (d["goal_us"], "met" if d["goal_met"] else "not met",
           added["p50_us"]["diff_of_medians"])]
    if d.get("problems"):
        md.append("\nProblems: " + "; ".join(map(str, d["problems"])))
    return "\n".join(md), {"added_p50_us": added["p50_us"]["diff_of_medians"],
                           "added_p99_us": added["p99_us"]["diff_of_medians"],
                           "added_min_us": added.get("min_us", {}).get("diff_of_medians"),
                           "goal_met": d["goal_met"]}


def sec_sched(d, plots, work):
    # The router's policies (XDP), then the other systems (late binding on
    # cpn-fwd, nginx) measured in the same rounds.
    pols = d.get("params", {}).get("policies", []) + d.get("params", {}).get("systems", [])
    rhos = d.get("params", {}).get("rhos", [])
    hom = {(e["rho"], e["policy"]): e for e in d.get("homogeneous", [])}
    th = {t["rho"]: t for t in d.get("theory", [])}

    def cell(e, q):
        if not e or q not in e:
            return None
        v = e[q]
        cens = e.get(q + "_censored_runs", 0)
        return "%.2f (%.2f..%.2f)%s" % (v["median"], v["min"], v["max"],
                                        " ≥timeout×%d" % cens if cens else "")
    tr = d.get("params", {}).get("target_reps")
    treps = " (late1 and nginx: %s)" % tr if tr and tr != d.get("params", {}).get("reps") else ""
    out = ["k = %s workers, `synthetic` exp(%s), capacity 1, open-loop Poisson from cpn-load; "
           "response times in units of the mean service time, median of %s runs%s (min..max). "
           "M/M/k: one central FCFS queue (Erlang C, `cpn-mmk`) at the measured service time; "
           "M/M/1: random assignment." % (d.get("params", {}).get("workers"),
                                          d.get("params", {}).get("svc"),
                                          d.get("params", {}).get("reps"), treps), ""]
    for q, title in (("p99", "p99"), ("p50", "p50"), ("p99.9", "p99.9")):
        head = ["ρ", "M/M/k"] + pols + ["M/M/1"]
        rows = []
        for r in rhos:
            t = th.get(r, {}).get("measured") or th.get(r, {}).get("nominal") or {}
            mean = t.get("mean_us", 2000.0)
            row = [r, (t.get("mmk", {}).get(q) or 0) / mean]
            row += [cell(hom.get((r, p)), q) for p in pols]
            row.append((t.get("mm1", {}).get(q) or 0) / mean)
            rows.append(row)
        out += ["**%s**" % title, "", table(head, rows), ""]
    if any(e.get("router_cpu_us_per_request") for e in hom.values()):
        head = ["ρ"] + pols
        rows = [[r] + [((hom.get((r, p)) or {}).get("router_cpu_us_per_request") or {}).get("median")
                       for p in pols] for r in rhos]
        out += ["**Router-side CPU per request (µs)**: XDP, the router program's run time (bpf_stats); "
                "cpn-fwd, its busy seconds (rounds that had packets or held requests to move); nginx, its "
                "processes' CPU.", "",
                table(head, rows), ""]
    lr = d.get("late_ratios", [])
    if lr:
        out += [table(["ρ", "late", "p99", "× M/M/k p99", "× nginx least_conn p99",
                       "undisturbed runs: × M/M/k", "× nginx"],
                      [[x["rho"], x["system"], x["p99"], x.get("vs_mmk_measured_p99"), x.get("vs_nginx_p99"),
                        x.get("vs_mmk_measured_p99_undisturbed"), x.get("vs_nginx_p99_undisturbed")]
                       for x in lr]), ""]
    tg = d.get("targets", [])
    if tg:
        out += [table(["target (ρ = 0.8)", "measured", "met"],
                      [[t["what"], t.get("ratio_measured", t.get("ratio")), t["met"]]
                       for t in tg]), ""]
    het = d.get("heterogeneous")
    if het:
        ws = het.get("workers", [])
        head = ["policy", "p99 ms", "unanswered"] + ["w%d share (cap. %.2f)" % (w["id"], w["capacity_share"])
                                                    for w in ws]
        rows = []
        for p in het.get("policies", []):
            p99 = p["p99_us"]["median"] / 1000
            rows.append([p["policy"], ("≥ %.0f (timeout)" % p99) if p.get("p99_censored_runs") else p99,
                         "%.1f %%" % (100 * p.get("unserved_share", {}).get("median", 0))] +
                        [p.get("share", {}).get(str(w["id"])) for w in ws])
        out += ["**Heterogeneous fleet** at ρ = %s (%s req/s): %s." %
                (het.get("rho"), het.get("rate"),
                 ", ".join("w%d %s%s" % (w["id"], w["svc"], " +%d µs path" % w["delay_us"]
                                         if w["delay_us"] else "") for w in ws)), "",
                table(head, rows), ""]
    for png in ("sched_p99.png", "sched_hetero.png"):
        if os.path.exists(os.path.join(plots, png)):
            out.append("![%s](bench/%s)\n" % (png, png))
    # The headline: p99 at rho 0.8 against the optimum.
    h = None
    if 0.8 in rhos:
        t = th.get(0.8, {}).get("measured") or {}
        opt = (t.get("mmk", {}).get("p99") or 0) / t.get("mean_us", 2000.0)
        rows = []
        for p in pols:
            e = hom.get((0.8, p))
            if e:
                rows.append([p, e["p99"]["median"], e["p99"]["median"] / opt if opt else None])
        h = ("Scheduling quality, k = 8 workers at ρ = 0.8 (p99 in mean service times; "
             "the optimum is one central queue, M/M/k = %.2f):\n\n" % opt +
             table(["policy", "p99", "× optimum"], rows) + "\n\n" +
             "\n".join("- %s: **%s** (%.2f)" % (t["what"], "met" if t["met"] else "not met",
                                               t.get("ratio_measured", t.get("ratio")) or 0)
                       for t in tg))
    return "\n".join(out), {"targets": tg, "headline_md": h}


def sec_fleet(d, plots, work):
    svc = d["mean_service_us"]
    head = ["policy", "routers", "p50", "p99 (min..max)", "p99.9", "sent", "lost"]
    rows = []
    for r in d["rows"]:
        p99 = r["p99"]
        rows.append([r["policy"], r["routers"], fmt(r["p50"]["median"]),
                     "%s (%s..%s)" % (fmt(p99["median"]), fmt(p99["min"]), fmt(p99["max"])),
                     fmt(r["p999"]["median"]), r["sent"], r["lost"]])
    q = {x["q"]: x for x in d["theory_us"]["mmk"]["quantiles"]}
    md = ["%d workers (exp, mean %g ms, one slot each), rho %.2f (%d req/s), %d repeat(s) of "
          "%g + %g s; latencies in mean service times, median over the repeats." %
          (d["workers"], svc / 1000, d["rho"], d["rate"], d["repeats"], d["warmup_s"],
           d["duration_s"]), "", table(head, rows), "",
          "Theory at this rho: M/M/%d p50 %s, p99 %s; M/M/1 p99 %s." %
          (d["workers"], fmt(q[0.5]["mmk"] / svc), fmt(q[0.99]["mmk"] / svc),
           fmt(q[0.99]["mm1"] / svc)), ""]
    ratio = d.get("p99_ratio_3_to_1", {})
    for pol, x in sorted(ratio.items()):
        md.append("- p99 of three routers over one, `%s`: **%s** (target 1.15)" % (pol, fmt(x, 3)))
    summary = {"p99_ratio_3_to_1": ratio}
    return "\n".join(md), summary


def sec_model(d, plots, work):
    head = ["image", "request bytes", "max batch", "req/s (min..max)", "p50 ms", "p99 ms",
            "answered", "errors"]
    rows = []
    for r in d["rows"]:
        t = r["req_per_s"]
        rows.append(["%d × %d" % (r["size"], r["size"]), r["request_bytes"], r["max_batch"],
                     "%s (%s..%s)" % (fmt(t["median"]), fmt(t["min"]), fmt(t["max"])),
                     fmt(r["p50_ms"]["median"]), fmt(r["p99_ms"]["median"]), r["answered"],
                     r["errors"]])
    md = ["ResNet-18, %d requests per run with %d in flight, %d-byte replies, torch on %d "
          "thread(s), one slot, max delay 20 ms; %d repeat(s), median and min..max over them." %
          (d["requests"], d["window"], d["reply_bytes"], d["threads"], d["repeats"]), "",
          table(head, rows), ""]
    for size, x in sorted(d.get("speedup_16_over_1", {}).items(), key=lambda kv: int(kv[0])):
        md.append("- %s × %s: throughput at batch 16 over batch 1 **%s×**" % (size, size, fmt(x, 3)))
    return "\n".join(md), {"speedup_16_over_1": d.get("speedup_16_over_1")}


def sec_seal(d, plots, work):
    head = ["payload", "clear req/s (min..max)", "sealed req/s (min..max)", "sealed MB/s",
            "sealed / clear", "p50 µs clear / sealed"]
    rows = []
    for r in d["results"]:
        c, s = r["clear"], r["sealed"]
        rows.append(["%d B" % r["payload_bytes"],
                     "%s (%s..%s)" % (fmt(c["req_s"]["median"]), fmt(c["req_s"]["min"]),
                                      fmt(c["req_s"]["max"])),
                     "%s (%s..%s)" % (fmt(s["req_s"]["median"]), fmt(s["req_s"]["min"]),
                                      fmt(s["req_s"]["max"])),
                     fmt(s["mb_s"]), fmt(r["sealed_over_clear"], 3),
                     "%s / %s" % (fmt(c["p50_us"]), fmt(s["p50_us"]))])
    md = ["%s; one cpn-worker (echo, one slot) driven by cpn-load on loopback, clear and sealed "
          "alternated, %d round(s) of %g s; medians." % (d["cipher"], d["runs"], d["duration_s"]),
          "", table(head, rows)]
    return "\n".join(md), {"sealed_over_clear": {str(r["payload_bytes"]): r["sealed_over_clear"]
                                                  for r in d["results"]}}


def sec_generic(d, plots, work, name):
    md = []
    if isinstance(d.get("summary_md"), str):
        md.append(d["summary_md"])
    for t in d.get("tables", []):
        md.append("\n" + (t.get("title", "") + "\n\n" if t.get("title") else "") +
                  table(t["head"], t["rows"]))
    for png in d.get("plots", []):
        b = os.path.basename(png)
        if os.path.exists(os.path.join(plots, b)):
            md.append("\n![%s](bench/%s)" % (b, b))
    if not md:
        md.append("```json\n" + json.dumps({k: v for k, v in d.items()
                                             if k not in ("machine",)}, indent=1)[:4000] + "\n```")
    return "\n".join(md), d.get("summary", {})


ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
TMP_RE = re.compile(r"/tmp/cpn-[A-Za-z0-9._-]+")
BIN_RE = re.compile(r"(?<![\w/.])/(?:usr/(?:local/)?)?s?bin/")


def scrub(v):
    """A figure's command as anyone can read it: paths in this checkout
    relative to it, a run's temporary directory as $TMP, programs without
    their machine's directory."""
    if isinstance(v, str):
        v = v.replace(ROOT + "/", "")
        v = TMP_RE.sub("$TMP", v)
        return BIN_RE.sub("", v)
    if isinstance(v, list):
        return [scrub(x) for x in v]
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items()}
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", help="bench-all.sh's work directory")
    ap.add_argument("--from-results", help="render again from an earlier results.json "
                    "(its figures, machine and time; new notes and layout)")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--results", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--invoked", default="bench/bench-all.sh")
    a = ap.parse_args()

    steps = {}
    old = None
    if a.from_results:
        import tempfile
        with open(a.from_results) as f:
            old = json.load(f)
        a.work = tempfile.mkdtemp(prefix="cpn-bench-report.")
        for name, e in old["benchmarks"].items():
            steps[name] = {k: e[k] for k in ("status", "seconds", "command", "reason")}
            if "result" in e:
                with open(os.path.join(a.work, name + ".json"), "w") as f:
                    json.dump(e["result"], f)
        a.mode, a.invoked = old["mode"], old["invoked"]
    elif not a.work:
        ap.error("--work or --from-results")
    else:
        with open(os.path.join(a.work, "steps.txt")) as f:
            for line in f:
                name, status, secs, cmd, reason = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
                steps[name] = {"status": status, "seconds": float(secs), "command": cmd,
                               "reason": reason}
    results = {"generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "mode": a.mode, "invoked": a.invoked, "machine": machine(), "benchmarks": {}}
    if old:
        results["generated"], results["machine"] = old["generated"], old["machine"]
    doc = ["# cpn benchmarks", "",
           "Written by `make bench` (`%s`, mode **%s**) on %s. Every figure comes with the "
           "command that produced it; every baseline was measured in the same run. "
           "Machine-readable: `bench/results.json`." % (a.invoked, a.mode, results["generated"]), "",
           "Machine: %(cpu)s, %(nproc)s CPUs, %(memory)s, %(uname)s." % results["machine"],
           "Other work may share these CPUs; ratios taken within one run hold better than "
           "absolute figures.", ""]
    notes_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "notes")
    headline = []
    body = []
    for name in ORDER:
        if name not in steps:
            continue
        st = steps[name]
        data = None
        jf = os.path.join(a.work, name + ".json")
        st["command"] = scrub(st["command"])
        st["reason"] = scrub(st["reason"])
        entry = dict(st)
        if st["status"] == "ok":
            try:
                with open(jf) as f:
                    data = scrub(json.load(f))
            except (OSError, ValueError) as e:
                entry["status"], entry["reason"] = "failed", "bad JSON: %s" % e
        body.append("## %s" % TITLES[name])
        body.append("")
        body.append("`%s` — %s, %.0f s." % (st["command"], entry["status"], st["seconds"]))
        body.append("")
        if data is not None:
            fn = {"xdp": sec_xdp, "fwd": sec_fwd, "sim": sec_sim, "fleet": sec_fleet,
                  "model": sec_model, "seal": sec_seal,
                      "worker": sec_worker, "fwdrate": sec_fwdrate, "latency": sec_latency,
                      "sched": sec_sched}.get(name)
            try:
                md, summary = fn(data, a.plots, a.work) if fn else \
                    sec_generic(data, a.plots, a.work, name)
            except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
                md, summary = "(report could not render this result: %r)" % e, {}
            body.append(md)
            entry["result"] = data
            entry["summary"] = summary
            if summary.get("headline_md"):
                headline.append(summary["headline_md"])
        else:
            body.append("**%s**: %s" % (entry["status"], entry["reason"] or "no result"))
        note = os.path.join(notes_dir, name + ".md")
        if os.path.exists(note):
            body.append("")
            with open(note) as f:
                body.append(f.read().strip())
        body.append("")
        for key, title, fn, note_name in SUBSECTIONS.get(name, []):
            if data is None or key not in data:
                continue
            try:
                md, summary = fn(data, a.plots, a.work)
            except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
                md, summary = "(report could not render this result: %r)" % e, {}
            body += ["## %s" % title, "", "`%s` — %s, %.0f s (this part %.0f s)." %
                     (st["command"], entry["status"], st["seconds"],
                      data[key].get("wall_s", 0)), "", md]
            entry.setdefault("summary", {})[key] = summary
            note = os.path.join(notes_dir, note_name + ".md")
            if os.path.exists(note):
                with open(note) as f:
                    body += ["", f.read().strip()]
            body.append("")
        results["benchmarks"][name] = entry
    if headline:
        doc += ["## Headline", ""] + headline + [""]
    gpu_dir = os.path.join(ROOT, "bench", "gpu")
    runs = gpu_runs(gpu_dir)
    if runs:
        md, summary = sec_worker_gpu(runs, gpu_dir)
        body += ["## Worker throughput on a GPU (CUDA next to CPU)", "", md, ""]
        note = os.path.join(notes_dir, "worker_gpu.md")
        if os.path.exists(note):
            with open(note) as f:
                body += [f.read().strip(), ""]
        results["benchmarks"]["worker_gpu"] = {
            "status": "ok", "imported": "bench/gpu/", "command": "bench/gpu-check.sh --out OUT",
            "seconds": 0, "reason": "measured on a machine with a GPU; kept in bench/gpu/",
            "summary": summary, "result": runs}
    doc += body
    extra = os.path.join(notes_dir, "extra.md")
    if os.path.exists(extra):
        with open(extra) as f:
            doc += [f.read().strip(), ""]
    with open(a.results, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    with open(a.doc, "w") as f:
        f.write("\n".join(doc).rstrip() + "\n")
    bad = [n for n, e in results["benchmarks"].items() if e["status"] == "failed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
