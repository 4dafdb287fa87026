/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A config (struct cpn_cfg, from config.c) turned into the values of the
 * router's maps. One conversion for every user: cpnctl's reconcile
 * (state.c) writes them into the pinned maps, cpn-fwd builds its
 * configuration snapshot from them.
 */
#ifndef CPNCTL_CFGMAP_H
#define CPNCTL_CFGMAP_H

#include "cpnctl.h"

void cpn_cfg_to_service(const struct cfg_service *c, struct cpn_service *s);
/* The node's address entry and its admin flags (cpn_node_state.admin). */
void cpn_cfg_to_node(const struct cfg_node *c, struct cpn_node_cfg *n, __u32 *admin);
void cpn_cfg_to_tenant(const struct cfg_tenant *c, struct cpn_tenant *t);

#endif /* CPNCTL_CFGMAP_H */
