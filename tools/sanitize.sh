#!/usr/bin/env bash
# Build cycnn's C and Cython code with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# kernel tests under it.
#
#   bash tools/sanitize.sh                 # build, then run the default kernel tests
#   bash tools/sanitize.sh tests/test_ops.py -k conv   # build, then run these pytest arguments
#
# The build goes to $CYCNN_SANITIZE_DIR (default /tmp/cycnn-sanitize): a copy of src/cycnn with
# the sanitized extensions next to it, so the in-place build of the checkout is left alone.
# Python itself is not sanitized, so libasan (and libubsan) are preloaded into it. Leak checking
# is off (the interpreter keeps memory to the end on purpose); any ASan report or any undefined
# behaviour (-fno-sanitize-recover=all) aborts the process, which fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${CYCNN_SANITIZE_DIR:-/tmp/cycnn-sanitize}"
PYTHON="${PYTHON:-python3}"
CC_BIN="${CC:-gcc}"

mkdir -p "$OUT/build"
rm -rf "$OUT/pkg"
mkdir -p "$OUT/pkg"
cp -r "$ROOT/src/cycnn" "$OUT/pkg/"
find "$OUT/pkg" \( -name '*.so' -o -name '*.c' -o -name '__pycache__' \) -prune -exec rm -rf {} +
(cd "$ROOT" && CYCNN_SANITIZE=1 "$PYTHON" setup.py build_ext -b "$OUT/pkg" -t "$OUT/build" -j 2 \
    > "$OUT/build.log" 2>&1) || { tail -30 "$OUT/build.log"; echo "sanitizer build failed" >&2; exit 1; }

ASAN_LIB="$("$CC_BIN" -print-file-name=libasan.so)"
UBSAN_LIB="$("$CC_BIN" -print-file-name=libubsan.so)"
[ -e "$ASAN_LIB" ] || { echo "libasan not found ($ASAN_LIB): install the compiler's sanitizer runtime" >&2; exit 1; }

if [ "$#" -eq 0 ]; then
    set -- tests/test_ops.py tests/test_pool_kernels.py tests/test_gemm.py tests/test_matmul.py \
           tests/test_fuzz_geometry.py tests/test_properties.py
fi
cd "$ROOT"
export LD_PRELOAD="$ASAN_LIB $UBSAN_LIB${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONPATH="$OUT/pkg"

# Self-check: the sanitizer must be live. A negative pad_left handed straight to the pooling
# kernel (cycnn.ops never allows it) makes it write before the start of y: ASan must abort.
if ( "$PYTHON" -c '
import numpy as np
from cycnn._kernels import pool
x = np.ones((1, 1, 64, 64), np.float32)
y = np.empty((1, 1, 64, 64), np.float32)
pool.max_pool2d_forward(x, y, np.empty(y.shape, np.int64), 1, 1, 1, 1, 0, -5, 1)
'; exit $? ) > "$OUT/selfcheck.log" 2>&1 || ! grep -q "ERROR: AddressSanitizer" "$OUT/selfcheck.log"; then
    cat "$OUT/selfcheck.log" >&2
    echo "sanitize.sh: AddressSanitizer did not catch the deliberate out-of-bounds write" >&2
    exit 1
fi
echo "sanitize.sh: AddressSanitizer is live (it caught the deliberate out-of-bounds write)"
exec "$PYTHON" -m pytest -q -p no:cacheprovider "$@"
