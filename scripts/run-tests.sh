#!/usr/bin/env bash
# The test command (README, .ci/run): every tier; BMv2/Mininet tiers skip with
# a reason when root, BMv2 or Mininet is missing. "No tests ran" is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
