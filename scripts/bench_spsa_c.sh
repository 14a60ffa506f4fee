#!/bin/bash
# Our SPSA against the C AVX-512 reference kernel (scripts/spsa_c_reference.c), one thread, NCHW,
# run alternately, CPU-time clock; prints the best of five medians of each.
#
#     scripts/bench_spsa_c.sh 1,64,56,56 1        (shape N,C,H,W with H = W, heads; N must be 1)
set -euo pipefail
shape=$1; heads=$2
bench=${BENCH:-.build-native/release/spatial-bench}
cref=$(mktemp -d)/spsa_c
gcc -O3 -march=native "$(dirname "$0")/spsa_c_reference.c" -o "$cref" -lm
channels=$(echo "$shape" | cut -d, -f2); side=$(echo "$shape" | cut -d, -f3)
ours=999999; c=999999
for round in 1 2 3 4 5; do
    v=$(SPATIAL_BENCH_CLOCK=cpu OPENBLAS_THREAD_TIMEOUT=4 "$bench" spsa --threads 1 --shape "$shape" \
        --heads "$heads" --layout nchw | grep '^\[' | awk '{print $8}')
    ours=$(python3 -c "print(min($ours, $v))")
    v=$("$cref" "$channels" "$side" | awk '{print $4}')
    c=$(python3 -c "print(min($c, $v))")
done
echo "$shape heads $heads: ours $ours µs, C $c µs, ratio $(python3 -c "print(round($ours / $c, 2))")"
