#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite serially.
# Extra arguments go to `meson test` (e.g. a test name).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --for-tests || exit 1
meson test -C build --num-processes 1 --print-errorlogs "$@"
status=$?
# One plain summary line for whoever reads the log.
python3 - <<'PY'
import json
passed = failed = skipped = 0
try:
    with open('build/meson-logs/testlog.json') as f:
        for line in f:
            r = json.loads(line).get('result')
            if r in ('OK', 'EXPECTEDFAIL'): passed += 1
            elif r == 'SKIP': skipped += 1
            else: failed += 1
except FileNotFoundError:
    pass
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
