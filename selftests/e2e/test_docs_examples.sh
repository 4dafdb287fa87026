#!/usr/bin/env bash
# The examples that docs/APPLICATIONS.md shows "complete" are the files that
# make test builds and runs (test_client, test_worker_py, test_worker_lib):
# each block must equal its file, and the client examples stay under 30
# lines.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
echo "1..2"
check_log "every_complete_example_in_the_guide_is_its_file" "/tmp/cpn-docs-ex.$$" python3 - <<'PY'
import re, sys
doc = open("docs/APPLICATIONS.md").read()
found = re.findall(r"\[examples/([\w.]+)\]\(\.\./examples/[\w.]+\), complete:\n\n```\w*\n(.*?)```\n", doc, re.S)
names = sorted(f for f, _ in found)
assert names == ["client.c", "client.py", "worker.c", "worker.py"], names
bad = [f for f, body in found if body != open("examples/" + f).read()]
print("differ:", bad)
sys.exit(1 if bad else 0)
PY
rm -f "/tmp/cpn-docs-ex.$$"
n_c=$(wc -l <examples/client.c) n_py=$(wc -l <examples/client.py)
check "the_client_examples_are_under_30_lines" "client.c $n_c lines, client.py $n_py lines" \
	test "$n_c" -lt 30 -a "$n_py" -lt 30
