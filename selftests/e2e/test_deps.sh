#!/usr/bin/env bash
# make deps (tools/deps.sh and tools/deps.list): every command the tests and
# tools call is in the list with its Debian package; on this machine (after
# make deps) nothing is missing; a missing command is installed by its
# package, and when apt-get cannot install it, or installs it without the
# command appearing, make deps exits non-zero naming the package; a machine
# that has everything runs no apt-get at all; a test that needs a missing
# command fails naming the package instead of skipping. apt-get is replaced
# by a stand-in on PATH: nothing is installed or downloaded.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
need_cmd python3

TMP=$(mktemp -d /tmp/cpn-deps.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
echo "1..7"

# 1. This machine has everything (make test ran make deps first).
check_log "deps_check_finds_nothing_missing_after_make_deps" "$TMP/check.log" tools/deps.sh --check

# 2. Every command that a test or a tool checks for is in the list. The
# commands: need_cmd's arguments in selftests/, and what `command -v` checks, and the
# `for t in ...; do command -v` lists in tools/ and selftests/.
python3 - >"$TMP/static.log" 2>&1 <<'PY'
import re, subprocess, sys
listed = set()
for line in open("tools/deps.list"):
    f = line.split()
    if len(f) >= 3 and f[0] == "cmd":
        listed.add(f[1])
files = subprocess.run(["git", "ls-files", "selftests", "tools", "Makefile", "mk"],
                       capture_output=True, text=True, check=True).stdout.split()
# Outside Debian by design: the CUDA toolkit and the GPU driver.
outside = {"nvcc", "nvidia-smi", "$NVCC"}
named = {}
for p in files:
    if not (p.endswith(".sh") or p == "tools/testbed" or p.endswith(".mk") or p == "Makefile"):
        continue
    text = open(p, errors="replace").read()
    for m in re.finditer(r"^\s*need_cmd ([^\n#]+)", text, re.M):
        for c in m.group(1).split():
            named.setdefault(c, p)
    for m in re.finditer(r'command -v "?([A-Za-z][\w.+-]*)', text):
        named.setdefault(m.group(1), p)
    for m in re.finditer(r"for [a-z] in ([a-z0-9 _-]+); do\s*\n?\s*command -v", text):
        for c in m.group(1).split():
            named.setdefault(c, p)
missing = sorted("%s (%s)" % (c, p) for c, p in named.items() if c not in listed and c not in outside)
print("commands named:", len(named))
assert len(named) >= 15, named
assert not missing, "not in tools/deps.list: " + ", ".join(missing)
PY
check "every_command_the_tests_and_tools_need_is_in_deps_list" "$TMP/static.log" [ $? -eq 0 ]

# A stand-in apt-get: records its arguments, exits with $FAKE_APT_RC.
mkdir -p "$TMP/bin"
cat >"$TMP/bin/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >>"$FAKE_APT_LOG"
exit "${FAKE_APT_RC:-0}"
SH
chmod +x "$TMP/bin/apt-get"
cat >"$TMP/list" <<'LIST'
# a list with one command that no package provides
cmd   bash                          bash
cmd   cpn-test-no-such-command      cpn-test-no-such-package   the test
LIST
deps() { # rc of the stand-in apt-get; output in $TMP/out, calls in $TMP/apt.log
	: >"$TMP/apt.log"
	PATH="$TMP/bin:$PATH" FAKE_APT_LOG="$TMP/apt.log" FAKE_APT_RC=$1 \
		CPN_DEPS_LIST="$TMP/list" tools/deps.sh >"$TMP/out" 2>&1
}

# 3. apt-get cannot install the package: exit non-zero, the package named.
deps 100
rc=$?
if [ $rc -ne 0 ] && grep -q "command 'cpn-test-no-such-command'.*Debian package cpn-test-no-such-package" "$TMP/out" &&
	grep -q "install .*cpn-test-no-such-package" "$TMP/apt.log" && ! grep -q " bash" "$TMP/apt.log"; then
	ok "deps_names_the_package_apt_get_cannot_install_and_exits_nonzero"
else
	not_ok "deps_names_the_package_apt_get_cannot_install_and_exits_nonzero" "rc=$rc" "$TMP/out" "$TMP/apt.log"
fi

# 4. apt-get says yes but the command is still missing: the same.
deps 0
rc=$?
if [ $rc -ne 0 ] && grep -q "Debian package cpn-test-no-such-package" "$TMP/out"; then
	ok "deps_checks_again_after_installing_and_names_what_is_still_missing"
else
	not_ok "deps_checks_again_after_installing_and_names_what_is_still_missing" "rc=$rc" "$TMP/out"
fi

# 5. Nothing missing: exit 0 without calling apt-get.
grep -v cpn-test-no-such "$TMP/list" >"$TMP/list2" && mv "$TMP/list2" "$TMP/list"
deps 100
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$TMP/apt.log" ]; then
	ok "deps_runs_no_apt_get_when_nothing_is_missing"
else
	not_ok "deps_runs_no_apt_get_when_nothing_is_missing" "rc=$rc" "$TMP/out" "$TMP/apt.log"
fi

# 6. A line of the list that is wrong is refused, naming it.
echo "exe   bash   bash" >>"$TMP/list"
deps 0
rc=$?
if [ $rc -ne 0 ] && grep -q "unknown kind 'exe'" "$TMP/out" && [ ! -s "$TMP/apt.log" ]; then
	ok "deps_refuses_a_list_with_an_unknown_kind"
else
	not_ok "deps_refuses_a_list_with_an_unknown_kind" "rc=$rc" "$TMP/out"
fi

# 7. A test that needs a missing command fails, naming the package: no skip.
out=$(bash -c '. selftests/e2e/lib.sh; need_cmd ethtool cpn-test-no-such-command; echo reached' 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "^not ok 1 - missing command 'cpn-test-no-such-command' (Debian package unknown" &&
	! echo "$out" | grep -q "SKIP\|reached"; then
	ok "a_test_needing_a_missing_command_fails_naming_its_package"
else
	not_ok "a_test_needing_a_missing_command_fails_naming_its_package" "rc=$rc" "$out"
fi
