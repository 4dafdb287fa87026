# Installing cpn, as an operator installs bpftool or xdp-tools.
#
#   make install   [DESTDIR=/staging] [PREFIX=/usr/local] [bindir=...] ...
#   make uninstall [the same variables]
#   make deb       [DEB_OUT=..] [DEB_JOBS=2]   the Debian packages, built by
#                  dpkg-buildpackage -us -uc -b from a copy of the tree
#
# What goes where (PREFIX=/usr/local; for PREFIX=/usr, sysconfdir is /etc):
#
#   $(sbindir)        cpnctl, cpn-fwd: root's programs (bpf(2), XDP, DPDK's
#                     hugepages and ports), like bpftool and xdp-loader
#   $(bindir)         cpn-load, cpn-sim, cpn-mmk, cpn-pktgen, and cpn-worker
#                     (a symlink): a worker needs no privilege, and its users
#                     run it without /usr/sbin on their PATH
#   $(pkglibexecdir)  cpn-worker itself, and libcpn_cuda.so beside it where
#                     nvcc built one: cpn_backend_pick() looks for the library
#                     in the directory of /proc/self/exe, which names the
#                     symlink's target, so the library stays off the PATH and
#                     out of ld.so's search
#   $(bpfdir)         cpn_router.bpf.o (cpnctl up --object, bpftool),
#                     cpn_xsk.bpf.o (cpn-fwd's net_af_xdp xdp_prog=),
#                     cpn_pass.bpf.o (veth peers), cpn_sink.bpf.o (cpn-pktgen's
#                     receiver): $(libdir)/bpf, where libxdp keeps its own
#   $(libdir)         libcpn.a, libcpn.so.$(LIBCPN_VERSION) and its symlinks,
#                     pkgconfig/libcpn.pc (naming this prefix)
#   $(includedir)/cpn include/cpn/*.h and libcpn's public cpn_*.h
#   $(mandir)         man/*.[138]
#   $(pythondir)/cpn  the Python package (python/cpn: ctypes over libcpn.so.0)
#   $(systemdunitdir) cpnctl.service, its paths rewritten to $(sbindir) and
#                     $(sysconfdir) (and Documentation= naming cpnctl(8))
#   $(sysconfdir)/cpn cpn.yaml, the example config (deploy/cpn.yaml), mode
#                     0640 (keys): never over an existing one; uninstall
#                     removes it only while it is unchanged
#
# install builds what it installs (and nothing of the tests or benchmarks);
# without DESTDIR, as root, it runs ldconfig for libcpn.so.

PREFIX         ?= /usr/local
prefix         ?= $(PREFIX)
exec_prefix    ?= $(prefix)
bindir         ?= $(exec_prefix)/bin
sbindir        ?= $(exec_prefix)/sbin
libdir         ?= $(exec_prefix)/lib$(if $(MULTIARCH),/$(MULTIARCH))
libexecdir     ?= $(exec_prefix)/libexec
pkglibexecdir  ?= $(libexecdir)/cpn
bpfdir         ?= $(libdir)/bpf
pkgconfigdir   ?= $(libdir)/pkgconfig
includedir     ?= $(prefix)/include
datarootdir    ?= $(prefix)/share
mandir         ?= $(datarootdir)/man
sysconfdir     ?= $(if $(filter /usr,$(prefix)),/etc,$(prefix)/etc)
systemdunitdir ?= $(exec_prefix)/lib/systemd/system
pythondir      ?= $(prefix)/lib/python3/dist-packages

INSTALL         ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 0755
INSTALL_DATA    ?= $(INSTALL) -m 0644

# ---- what is installed ----------------------------------------------------
# Programs from PROGS (a program a fragment adds is installed without a change
# here): root's in sbin, cpn-worker in pkglibexecdir, the rest in bin.
INST_LIBFILES := $(LIBCPN_A) $(LIBCPN_SO) $(LIBCPN_PC) $(CUDA_SO)
INST_PROGS    := $(filter-out $(INST_LIBFILES),$(PROGS))
INST_SBIN     := $(filter %/cpnctl %/cpn-fwd,$(INST_PROGS))
INST_WORKER   := $(filter %/cpn-worker,$(INST_PROGS))
INST_BIN      := $(filter-out $(INST_SBIN) $(INST_WORKER),$(INST_PROGS))
INST_CUDA     := $(filter $(CUDA_SO),$(PROGS))
INST_BPF      := bpf/cpn_router.bpf.o bpf/cpn_xsk.bpf.o bpf/cpn_pass.bpf.o \
	tools/cpn-pktgen/cpn_sink.bpf.o
INST_HEADERS  := $(wildcard include/cpn/*.h) \
	$(filter-out userspace/lib/cpn_cfg_int.h,$(wildcard userspace/lib/cpn_*.h))
INST_MAN      := $(wildcard man/*.1 man/*.3 man/*.8)
MAN_SECTIONS  := $(sort $(subst .,,$(suffix $(INST_MAN))))
INST_UNIT     := deploy/systemd/cpnctl.service
INST_PY       := $(wildcard python/cpn/*.py)
INST_CONFIG   := deploy/cpn.yaml

# Every path install writes (under DESTDIR), but the config: uninstall's list
# (libcpn_cuda.so too where this build has no nvcc: an earlier one may have).
INSTALLED := $(addprefix $(sbindir)/,$(notdir $(INST_SBIN))) \
	$(addprefix $(bindir)/,$(notdir $(INST_BIN) $(INST_WORKER))) \
	$(addprefix $(pkglibexecdir)/,$(notdir $(INST_WORKER) $(CUDA_SO))) \
	$(addprefix $(bpfdir)/,$(notdir $(INST_BPF))) \
	$(libdir)/$(notdir $(LIBCPN_A)) $(libdir)/$(notdir $(LIBCPN_SO)) \
	$(libdir)/$(LIBCPN_SONAME) $(libdir)/libcpn.so $(pkgconfigdir)/libcpn.pc \
	$(addprefix $(includedir)/cpn/,$(notdir $(INST_HEADERS))) \
	$(foreach m,$(INST_MAN),$(mandir)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(systemdunitdir)/$(notdir $(INST_UNIT)) \
	$(addprefix $(pythondir)/cpn/,$(notdir $(INST_PY)))
# Directories of cpn's own, removed by uninstall when empty (deepest first).
INSTALLED_DIRS := $(pythondir)/cpn $(includedir)/cpn $(pkglibexecdir) $(bpfdir) $(sysconfdir)/cpn

# A path under $(prefix) as the .pc writes it: ${prefix}/... (relocatable).
pc_path = $(patsubst $(prefix)/%,$${prefix}/%,$(1))

.PHONY: uninstall deb

install: $(INST_PROGS) $(INST_CUDA) $(INST_BPF) $(LIBCPN_A) $(LIBCPN_SO) $(LIBCPN_PC)
	$(INSTALL) -d -m 0755 $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir) $(DESTDIR)$(pkglibexecdir) \
		$(DESTDIR)$(bpfdir) $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(includedir)/cpn \
		$(DESTDIR)$(systemdunitdir) $(DESTDIR)$(pythondir)/cpn \
		$(addprefix $(DESTDIR)$(mandir)/man,$(MAN_SECTIONS))
	$(INSTALL_PROGRAM) $(INST_SBIN) $(DESTDIR)$(sbindir)/
	$(INSTALL_PROGRAM) $(INST_BIN) $(DESTDIR)$(bindir)/
	$(INSTALL_PROGRAM) $(INST_WORKER) $(DESTDIR)$(pkglibexecdir)/
	ln -sfn $$(realpath -m --relative-to=$(bindir) $(pkglibexecdir)/cpn-worker) \
		$(DESTDIR)$(bindir)/cpn-worker
ifneq ($(INST_CUDA),)
	$(INSTALL_DATA) $(INST_CUDA) $(DESTDIR)$(pkglibexecdir)/
endif
	$(INSTALL_DATA) $(INST_BPF) $(DESTDIR)$(bpfdir)/
	$(INSTALL_DATA) $(LIBCPN_A) $(LIBCPN_SO) $(DESTDIR)$(libdir)/
	ln -sfn $(notdir $(LIBCPN_SO)) $(DESTDIR)$(libdir)/$(LIBCPN_SONAME)
	ln -sfn $(LIBCPN_SONAME) $(DESTDIR)$(libdir)/libcpn.so
	sed -e 's|^prefix=.*|prefix=$(prefix)|' \
		-e 's|^includedir=.*|includedir=$(call pc_path,$(includedir))|' \
		-e 's|^libdir=.*|libdir=$(call pc_path,$(libdir))|' \
		$(LIBCPN_PC) >$(DESTDIR)$(pkgconfigdir)/libcpn.pc.tmp
	chmod 0644 $(DESTDIR)$(pkgconfigdir)/libcpn.pc.tmp
	mv $(DESTDIR)$(pkgconfigdir)/libcpn.pc.tmp $(DESTDIR)$(pkgconfigdir)/libcpn.pc
	$(INSTALL_DATA) $(INST_HEADERS) $(DESTDIR)$(includedir)/cpn/
	$(INSTALL_DATA) $(INST_PY) $(DESTDIR)$(pythondir)/cpn/
	$(foreach s,$(MAN_SECTIONS),$(INSTALL_DATA) $(filter %.$(s),$(INST_MAN)) $(DESTDIR)$(mandir)/man$(s)/;)
	sed -e 's|/usr/local/sbin/cpnctl|$(sbindir)/cpnctl|g' \
		-e 's|/etc/cpn/cpn\.yaml|$(sysconfdir)/cpn/cpn.yaml|g' \
		$(if $(shell grep -s '^Documentation=' $(INST_UNIT)),,-e '/^Description=/a Documentation=man:cpnctl(8)') \
		$(INST_UNIT) >$(DESTDIR)$(systemdunitdir)/cpnctl.service.tmp
	grep -q '^ExecStart=$(sbindir)/cpnctl daemon' $(DESTDIR)$(systemdunitdir)/cpnctl.service.tmp
	chmod 0644 $(DESTDIR)$(systemdunitdir)/cpnctl.service.tmp
	mv $(DESTDIR)$(systemdunitdir)/cpnctl.service.tmp $(DESTDIR)$(systemdunitdir)/cpnctl.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then \
		echo ldconfig; ldconfig; fi
	@if [ -e $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml ]; then \
		echo "install: kept $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml (the example is $(INST_CONFIG))"; \
	else \
		[ -d $(DESTDIR)$(sysconfdir)/cpn ] || $(INSTALL) -d -m 0755 $(DESTDIR)$(sysconfdir)/cpn; \
		echo "$(INSTALL) -m 0640 $(INST_CONFIG) $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml"; \
		$(INSTALL) -m 0640 $(INST_CONFIG) $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml; \
	fi

# The config goes only while it is the example, unchanged.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -e $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml ]; then \
		if cmp -s $(INST_CONFIG) $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml; then \
			echo "rm -f $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml"; \
			rm -f $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml; \
		else \
			echo "uninstall: kept $(DESTDIR)$(sysconfdir)/cpn/cpn.yaml (changed since install)"; \
		fi; \
	fi
	@for d in $(addprefix $(DESTDIR),$(INSTALLED_DIRS)); do \
		[ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d; done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then \
		echo ldconfig; ldconfig; fi

# ---- make deb -------------------------------------------------------------
# The tree is copied (what git tracks, and untracked files it does not
# ignore; outside git, everything but $(BUILD), .git and build outputs) into
# a temporary directory and built there, so that $(BUILD) and the tree are
# left alone. The packages, .buildinfo and .changes land in DEB_OUT.
DEB_OUT  ?= ..
DEB_JOBS ?= 2
DEB_TMP  ?= $(or $(TMPDIR),/tmp)

deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "make deb: no dpkg-buildpackage" \
		"(Debian package dpkg-dev; make deps)" >&2; exit 1; }
	@set -e; \
	ver=$$(dpkg-parsechangelog -S Version); \
	work=$$(mktemp -d "$(DEB_TMP)/cpn-deb.XXXXXX"); \
	trap 'rm -rf "$$work"' EXIT; \
	src=$$work/cpn-$$ver; mkdir -p "$$src"; \
	echo "deb: copying the tree to $$src"; \
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$$src"; \
	else \
		tar --exclude=./$(BUILD) --exclude=./.git --exclude='*.o' --exclude='*.skel.h' \
			-cf - . | tar -xf - -C "$$src"; \
	fi; \
	echo "deb: dpkg-buildpackage -us -uc -b -j$(DEB_JOBS) in $$src"; \
	(cd "$$src" && dpkg-buildpackage -us -uc -b -j$(DEB_JOBS)); \
	mkdir -p "$(DEB_OUT)"; \
	cp "$$work"/*.deb "$$work"/*.buildinfo "$$work"/*.changes "$(DEB_OUT)"/; \
	for f in "$$work"/*.deb; do echo "deb: $(DEB_OUT)/$${f##*/}"; done
