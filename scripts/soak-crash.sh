#!/usr/bin/env bash
# Soak test of crash safety: the crash tests of tests/it/hardening_crash.rs with many more
# rounds, so hundreds of SIGKILLs land on `homekey serve`, `homekey user set-password
# --logout-devices` and `homekey user import`, on SQLite and PostgreSQL. After every kill
# each account must be wholly old or wholly new, and a re-run import must complete.
#
#   scripts/soak-crash.sh            # scale 10: about 800 kill points per database
#   scripts/soak-crash.sh 40         # scale 40: about 3000
#
# The scale multiplies the CI rounds (20 serve kills, 20 x 3 set-password processes and 10
# import kills per database). PostgreSQL is $HOMEKEY_TEST_POSTGRES_URL (default the
# machine's server on 127.0.0.1:5432); CI=true makes a missing one a failure instead of a skip.
# The tallies (kills, operations landed / not landed, rounds where the kill came while
# operations were running) are printed as `crash (...)` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-10}"
export HOMEKEY_CRASH_SCALE="$scale"
cargo test --test it hardening_crash -- --nocapture --test-threads=2 2>&1 |
  grep -E '^(crash \(|test |test result)'
