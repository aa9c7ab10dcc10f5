#!/bin/bash
# What one abusive client can cost (prints figures, never fails on them):
#   tests/bench/abuse.sh [BUILD_DIR] [CLIENTS]
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
export top_srcdir top_builddir ABUSE_CLIENTS="${2:-1}"
exec node "$top_srcdir/tests/bench/abuse.mjs"
