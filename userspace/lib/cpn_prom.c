// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Prometheus' text exposition: see cpn_prom.h. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cpn_prom.h"

const struct cpn_metric_family cpn_metric_families[CPN_M_MAX] = {
#define CPN_METRIC_FAMILY(id, name, type, help) [CPN_M_##id] = {name, type, help},
    CPN_METRICS(CPN_METRIC_FAMILY)
#undef CPN_METRIC_FAMILY
};

#define DROP_PREFIX "drop_"
#define PASS_PREFIX "pass_"

void cpn_prom_labels_reset(struct cpn_prom_labels *l)
{
	l->n = 0;
	l->s[0] = 0;
}

static void lbl_putc(struct cpn_prom_labels *l, char c)
{
	if (l->n + 1 < sizeof(l->s)) {
		l->s[l->n++] = c;
		l->s[l->n] = 0;
	}
}

static void lbl_puts(struct cpn_prom_labels *l, const char *s)
{
	while (*s)
		lbl_putc(l, *s++);
}

void cpn_prom_label(struct cpn_prom_labels *l, const char *k, const char *v)
{
	if (l->n)
		lbl_putc(l, ',');
	lbl_puts(l, k);
	lbl_puts(l, "=\"");
	for (; *v; v++) {
		if (*v == '\\' || *v == '"') {
			lbl_putc(l, '\\');
			lbl_putc(l, *v);
		} else if (*v == '\n') {
			lbl_puts(l, "\\n");
		} else {
			lbl_putc(l, *v);
		}
	}
	lbl_putc(l, '"');
}

void cpn_prom_labelu(struct cpn_prom_labels *l, const char *k, unsigned long long v)
{
	char b[24];

	snprintf(b, sizeof(b), "%llu", v);
	cpn_prom_label(l, k, b);
}

void cpn_prom_with(struct cpn_prom_labels *out, const struct cpn_prom_labels *base, ...)
{
	va_list ap;
	const char *k;

	if (base)
		*out = *base;
	else
		cpn_prom_labels_reset(out);
	va_start(ap, base);
	while ((k = va_arg(ap, const char *)))
		cpn_prom_label(out, k, va_arg(ap, const char *));
	va_end(ap);
}

void cpn_prom_family(FILE *f, enum cpn_metric m)
{
	const struct cpn_metric_family *fm = &cpn_metric_families[m];

	fprintf(f, "# HELP %s ", fm->name);
	for (const char *h = fm->help; *h; h++) {
		if (*h == '\\')
			fputs("\\\\", f);
		else if (*h == '\n')
			fputs("\\n", f);
		else
			fputc(*h, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", fm->name, fm->type);
}

void cpn_prom_fmt_double(char *b, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(b, len, "NaN");
	} else if (isinf(v)) {
		snprintf(b, len, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(b, len, "%.15g", v);
		if (strtod(b, NULL) != v)
			snprintf(b, len, "%.17g", v);
	}
}

static void head(FILE *f, enum cpn_metric m, const char *suffix, const struct cpn_prom_labels *l)
{
	fputs(cpn_metric_families[m].name, f);
	if (suffix)
		fputs(suffix, f);
	if (l && l->n)
		fprintf(f, "{%s}", l->s);
}

void cpn_prom_u64(FILE *f, enum cpn_metric m, const char *suffix, const struct cpn_prom_labels *l,
		  unsigned long long v)
{
	head(f, m, suffix, l);
	fprintf(f, " %llu\n", v);
}

void cpn_prom_double(FILE *f, enum cpn_metric m, const char *suffix,
		     const struct cpn_prom_labels *l, double v)
{
	char b[40];

	cpn_prom_fmt_double(b, sizeof(b), v);
	head(f, m, suffix, l);
	fprintf(f, " %s\n", b);
}

/* ---- the counters both data planes export ------------------------------------ */

void cpn_prom_packets(FILE *f, const char *plane, const __u64 stats[CPN_STAT_MAX])
{
	static const struct {
		enum cpn_metric m;
		const char *label, *prefix;
	} fams[] = {
	    {CPN_M_PACKETS, "action", NULL},
	    {CPN_M_DROPPED, "reason", DROP_PREFIX},
	    {CPN_M_PASSED, "reason", PASS_PREFIX},
	};

	for (size_t fi = 0; fi < sizeof(fams) / sizeof(fams[0]); fi++) {
		cpn_prom_family(f, fams[fi].m);
		for (int i = 0; i < CPN_STAT_MAX; i++) {
			const char *n = cpn_stat_names[i];
			int drop = !strncmp(n, DROP_PREFIX, strlen(DROP_PREFIX));
			int pass = !strncmp(n, PASS_PREFIX, strlen(PASS_PREFIX));
			struct cpn_prom_labels l;

			if (fams[fi].prefix ? strncmp(n, fams[fi].prefix, strlen(fams[fi].prefix))
					    : drop || pass)
				continue;
			if (fams[fi].prefix)
				n += strlen(fams[fi].prefix);
			cpn_prom_with(&l, NULL, fams[fi].label, n, "plane", plane, NULL);
			cpn_prom_u64(f, fams[fi].m, NULL, &l, stats[i]);
		}
	}
}

void cpn_prom_services(FILE *f, const char *plane, const struct cpn_prom_svc *s, int n)
{
	/* A counter of `words` __u64 is one series per reason (labels in
	 * `reasons`), a plain one a single series.
	 */
	static const struct {
		enum cpn_metric m;
		size_t off;
		int words;
		const char *const *reasons;
	} c[] = {
	    {CPN_M_SVC_REQUESTS, offsetof(struct cpn_svc_stats, requests), 1, NULL},
	    {CPN_M_SVC_REPLIES, offsetof(struct cpn_svc_stats, replies), 1, NULL},
	    {CPN_M_SVC_NODE_BUSY, offsetof(struct cpn_svc_stats, node_busy), 1, NULL},
	    {CPN_M_SVC_BUSY, offsetof(struct cpn_svc_stats, busy), CPN_SVC_BUSY_REASONS,
	     cpn_svc_busy_names},
	    {CPN_M_SVC_REFUSED, offsetof(struct cpn_svc_stats, refused), CPN_REFUSE_MAX,
	     cpn_refusal_names},
	};
	struct cpn_prom_labels l;

	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		cpn_prom_family(f, c[k].m);
		for (int i = 0; i < n; i++) {
			const __u64 *v = (const __u64 *)((const char *)&s[i].ss + c[k].off);

			for (int r = 0; r < c[k].words; r++) {
				if (c[k].reasons)
					cpn_prom_with(&l, &s[i].l, "reason", c[k].reasons[r],
						      "plane", plane, NULL);
				else
					cpn_prom_with(&l, &s[i].l, "plane", plane, NULL);
				cpn_prom_u64(f, c[k].m, NULL, &l, v[r]);
			}
		}
	}
}

void cpn_prom_nodes(FILE *f, const char *plane, const struct cpn_prom_node *nd, int n)
{
	static const struct {
		enum cpn_metric m;
		size_t off;
	} c[] = {
	    {CPN_M_NODE_REQUESTS, offsetof(struct cpn_node_stats, requests)},
	    {CPN_M_NODE_REPLIES, offsetof(struct cpn_node_stats, replies)},
	    {CPN_M_NODE_BUSY, offsetof(struct cpn_node_stats, busy)},
	    {CPN_M_NODE_REPORTS, offsetof(struct cpn_node_stats, reports)},
	};
	struct cpn_prom_labels l;

	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		cpn_prom_family(f, c[k].m);
		for (int i = 0; i < n; i++) {
			cpn_prom_with(&l, &nd[i].l, "plane", plane, NULL);
			cpn_prom_u64(f, c[k].m, NULL, &l,
				     *(const __u64 *)((const char *)&nd[i].ns + c[k].off));
		}
	}
}
