#!/usr/bin/env python3
"""Check `spatial-attention spsa` against an independent NumPy transcription of the paper's code.

The reference is a line-by-line transcription of SPSA_Attention in 001 Appendix A.1 (PyTorch), in
float64, extended as the paper says ("multi-head SPSA simply adds one dimension to the input"):
x [N, C, H, W] is viewed as [N, G, C/G, H, W] and every reduction over channels runs over the
head's C/G channels. Two deliberate differences from the printed code, both from issue 2:
  * the printed code reduces with `mean(dim=1)` without keepdim, which only broadcasts when N = 1;
    the intent (and the comments "N,C,1,1", "N,1,H,W") is keepdim=True, used here;
  * degenerate rule: where a pixel's centred channel vector within a head is zero (a constant pixel)
    or the head's centred key is zero (a constant key), corr = 0, so A = 0.5^alpha. The printed code
    divides 0 by 0 there and gives NaN. A NaN/Inf input makes the head's key NaN; then the NaN
    propagates to every pixel of the head (the rule applies only to a finite key).
`--similarity cosine` skips both centrings (002 Table 10 ablation); `--no-reverse` uses sigmoid^alpha.

Comparison, element by element, NaN matching NaN:
    |actual - expected| <= 1e-5 * max(|expected|, FLOOR),  FLOOR = 1e-30.
Each output is x[c,p] * A[p] with one A per pixel and head, so its error is |x|·|dA| plus one Float32
rounding: relative to |expected| itself, with no absolute part (an exact zero input gives an exact
zero output). The floor only matters below ~1e-33, where Float32 results are subnormal and cannot
carry 1e-5 relative precision; no generated value comes near it. A pure relative test is therefore
the strict one, and the floor does not loosen it for any data generated here.

Usage: scripts/spsa_numpy_check.py [BINARY] [--cases N] [--seed S] [--keep DIR]
(BINARY defaults to .build-native/release/spatial-attention.) Exits 1 on any mismatch.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

RTOL = 1e-5
FLOOR = 1e-30


def spsa_reference(x, alpha, heads, reverse=True, similarity="correlation"):
    """SPSA_Attention (001 A.1) in float64, multi-head, with the degenerate rule."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    x = x.reshape(N, heads, C // heads, H, W)             # one more dimension: the head
    ch = 2                                                  # the paper's dim=1, shifted by the head
    k = x.mean(axis=(-1, -2), keepdims=True)                # N,G,cph,1,1
    if similarity == "correlation":
        kc = k - k.mean(axis=ch, keepdims=True)
        xc = x - x.mean(axis=ch, keepdims=True)
    else:
        kc, xc = k, x
    kd = np.sqrt((kc ** 2).sum(axis=ch, keepdims=True))     # N,G,1,1,1
    Qd = np.sqrt((xc ** 2).sum(axis=ch, keepdims=True))     # N,G,1,H,W
    numerator = (xc * kc).sum(axis=ch, keepdims=True)       # N,G,1,H,W
    degenerate = ((Qd == 0) | (kd == 0)) & np.isfinite(kd)
    with np.errstate(divide="ignore", invalid="ignore"):
        C_Qk = np.where(degenerate, 0.0, numerator / (Qd * kd))
    sigmoid = 1.0 / (1.0 + np.exp(-C_Qk))
    A = (1.0 - sigmoid) ** alpha if reverse else sigmoid ** alpha
    return (x * A).reshape(N, C, H, W)


def compare(actual, expected):
    """(ok, max relative error, worst index) under |a - e| <= RTOL * max(|e|, FLOOR)."""
    a = actual.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    if not np.array_equal(nan_a, nan_e):
        index = tuple(int(i) for i in np.argwhere(nan_a != nan_e)[0])
        return False, float("inf"), index
    finite = ~nan_e
    err = np.where(finite, np.abs(a - expected), 0.0)
    bound = RTOL * np.maximum(np.abs(expected), FLOOR)
    rel = np.where(finite, err / np.maximum(np.abs(expected), FLOOR), 0.0)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(rel), rel.shape))
    return bool(np.all((err <= bound) | ~finite)), float(rel.max(initial=0.0)), worst


def divisors(c):
    return [d for d in range(1, c + 1) if c % d == 0]


def make_input(rng, shape, kind):
    N, C, H, W = shape
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "offset1000":
        return (rng.standard_normal(shape) + 1000).astype(np.float32)
    if kind == "constant-pixels":
        # Every pixel's channel vector is constant (all channels equal there); half the pixels
        # of a random copy elsewhere, so constant and ordinary pixels meet in one head.
        x = rng.standard_normal(shape).astype(np.float32)
        plane = rng.standard_normal((N, 1, H, W)).astype(np.float32)
        mask = rng.random((N, 1, H, W)) < 0.5
        return np.where(mask, np.broadcast_to(plane, shape), x).astype(np.float32)
    if kind == "constant-channels":
        # Each channel constant over the image: every pixel equals the key, corr = 1.
        return np.broadcast_to(rng.standard_normal((N, C, 1, 1)), shape).astype(np.float32).copy()
    if kind == "constant-key":
        # Every channel a permutation of the same multiples of 1/256 over a power-of-two pixel
        # count: sums and means are exact in Float32 and float64, so every channel of a head has
        # the same mean, the centred key is exactly zero, and A = 0.5^alpha everywhere.
        values = rng.integers(-2048, 2048, size=H * W).astype(np.float32) / 256
        x = np.empty(shape, np.float32)
        for n in range(N):
            for c in range(C):
                x[n, c] = rng.permutation(values).reshape(H, W)
        return x
    if kind == "nan":
        x = rng.standard_normal(shape).astype(np.float32)
        x.flat[rng.integers(x.size)] = np.nan
        return x
    raise ValueError(kind)


def run_cli(binary, folder, x, options, layout, dtype=np.float32):
    """Writes x ([N,C,H,W]) as .npy in `layout` and `dtype`, runs the CLI, returns [N,C,H,W] float32."""
    src, dst = os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy")
    stored = x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.save(src, stored.astype(dtype))
    if os.path.exists(dst):
        os.remove(dst)
    command = [binary, "spsa", "--input", src, "--output", dst, "--layout", layout] + options
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    y = np.load(dst)
    assert y.dtype == np.dtype("<f4"), y.dtype
    return y if layout == "nchw" else y.transpose(0, 3, 1, 2)


def cases(rng, count):
    """Random cases covering every option; the first ones pin the corners."""
    channels = [1, 2, 3, 15, 16, 17, 64, 65, 128, 256]
    sizes = [(1, 1), (1, 7), (7, 7), (13, 11), (4, 4), (8, 8), (1, 16), (28, 28)]
    kinds = ["normal", "offset1000", "constant-pixels", "constant-channels", "constant-key", "nan"]
    alphas = [0.0, 1.0, 2.0, 2.5, 0.5, 3.7]
    fixed = []
    for kind in kinds:
        for alpha in [0.0, 1.0, 2.0, 2.5]:
            fixed.append(dict(kind=kind, alpha=alpha))
    out = []
    for i in range(count):
        base = fixed[i] if i < len(fixed) else {}
        kind = base.get("kind", kinds[rng.integers(len(kinds))])
        C = channels[rng.integers(len(channels))]
        H, W = sizes[rng.integers(len(sizes))]
        if kind == "constant-key":
            H, W = [(4, 4), (8, 8), (1, 16), (2, 8)][rng.integers(4)]
        N = int(rng.integers(1, 4))
        alpha = base.get("alpha", alphas[rng.integers(len(alphas))])
        split = rng.integers(3)
        if split == 0 and C % 64 == 0:
            heads, options = C // 64, []                     # the default: 64 channels per head
        elif split == 1:
            heads = int(rng.choice(divisors(C)))
            options = ["--heads", str(heads)]
        else:
            cph = int(rng.choice(divisors(C)))
            heads, options = C // cph, ["--channels-per-head", str(cph)]
        reverse = bool(rng.integers(2))
        similarity = ["correlation", "cosine"][rng.integers(2)]
        layout = ["nchw", "nhwc"][rng.integers(2)]
        dtype = [np.float32, np.float32, np.float32, np.float64, np.float16][rng.integers(5)]
        if kind in ("offset1000", "constant-key"):
            dtype = np.float32 if dtype == np.float16 else dtype   # float16 cannot hold 1000 + noise
        options = options + ["--alpha", repr(float(alpha))]
        if not reverse:
            options.append("--no-reverse")
        options += ["--similarity", similarity]
        out.append(dict(shape=(N, C, H, W), kind=kind, alpha=alpha, heads=heads, reverse=reverse,
                        similarity=similarity, layout=layout, dtype=dtype, options=options))
    return out


def check_errors(binary, folder):
    """Bad files and shapes: non-zero exit, a message on stderr, no output file."""
    failures = []
    good = os.path.join(folder, "good.npy")
    np.save(good, np.ones((1, 6, 2, 2), np.float32))
    bad_files = {
        "int32": lambda p: np.save(p, np.ones((1, 4, 2, 2), np.int32)),
        "big-endian": lambda p: np.save(p, np.ones((1, 4, 2, 2), ">f4")),
        "fortran": lambda p: np.save(p, np.asfortranarray(np.ones((1, 4, 2, 2), np.float32))),
        "truncated": lambda p: open(p, "wb").write(open(good, "rb").read()[:100]),
        "3-D": lambda p: np.save(p, np.ones((4, 2, 2), np.float32)),
    }
    runs = [(name, make, ["--heads", "2"]) for name, make in bad_files.items()]
    runs.append(("C=6 not a multiple of 4", None, ["--channels-per-head", "4"]))
    runs.append(("missing file", "missing", []))
    for name, make, options in runs:
        src = os.path.join(folder, "bad.npy")
        dst = os.path.join(folder, "bad-out.npy")
        if os.path.exists(src):
            os.remove(src)
        if make is None:
            src = good
        elif make != "missing":
            make(src)
        result = subprocess.run([binary, "spsa", "--input", src, "--output", dst] + options,
                                capture_output=True, text=True, timeout=60)
        leftovers = [f for f in os.listdir(folder) if f.startswith("bad-out")]
        if result.returncode == 0 or not result.stderr.strip() or leftovers:
            failures.append(f"{name}: exit {result.returncode}, stderr {result.stderr.strip()!r}, left {leftovers}")
        else:
            print(f"  error case {name:26s} exit {result.returncode}: {result.stderr.strip()}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", nargs="?", default=".build-native/release/spatial-attention")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no executable at {args.binary}: build it first (make build)")
    rng = np.random.default_rng(args.seed)
    failures, worst = [], (0.0, None)
    counts = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in cases(rng, args.cases):
            x = make_input(rng, case["shape"], case["kind"])
            stored = x.astype(case["dtype"]).astype(np.float32)     # what the CLI reads
            expected = spsa_reference(stored, case["alpha"], case["heads"], case["reverse"], case["similarity"])
            try:
                actual = run_cli(args.binary, folder, x, case["options"], case["layout"], case["dtype"])
            except Exception as error:  # noqa: BLE001: report every failure, keep going
                failures.append(f"{case['shape']} {case['options']}: {error}")
                continue
            ok, rel, index = compare(actual, expected)
            label = f"{case['kind']} {case['shape']} {case['layout']} {np.dtype(case['dtype']).name} {' '.join(case['options'])}"
            counts[case["kind"]] = counts.get(case["kind"], 0) + 1
            if rel > worst[0]:
                worst = (rel, label)
            if not ok:
                failures.append(f"{label}: max rel error {rel:.3g} at {index}: "
                                f"actual {actual[index]!r}, expected {expected[index]!r}")
            if case["kind"] == "constant-pixels" and case["similarity"] == "correlation":
                # Constant pixels (all channels equal) get exactly 0.5^alpha: checked directly.
                constant = np.all(stored == stored[:, :1], axis=1)              # N,H,W
                half = np.float64(0.5) ** case["alpha"]
                got = actual.astype(np.float64).transpose(0, 2, 3, 1)[constant]
                want = stored.astype(np.float64).transpose(0, 2, 3, 1)[constant] * half
                if not np.all(np.abs(got - want) <= RTOL * np.maximum(np.abs(want), FLOOR)):
                    failures.append(f"{label}: constant pixels are not 0.5^alpha·x")
            if case["kind"] == "constant-key" and case["similarity"] == "correlation":
                # Every output is exactly 0.5^alpha · x: the degenerate rule, checked directly.
                half = np.float64(0.5) ** case["alpha"]
                ok2, rel2, index2 = compare(actual, stored.astype(np.float64) * half)
                if not ok2:
                    failures.append(f"{label}: constant key is not 0.5^alpha·x (rel {rel2:.3g} at {index2})")
        print(f"compared {sum(counts.values())} CLI runs against the NumPy reference: " +
              ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print(f"worst relative error {worst[0]:.3g} ({worst[1]}); bound {RTOL} relative, floor {FLOOR}")
        failures += check_errors(args.binary, folder)
    if failures:
        print(f"FAILED: {len(failures)} problem(s)")
        for line in failures[:40]:
            print("  " + line)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
