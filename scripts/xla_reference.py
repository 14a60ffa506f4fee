#!/usr/bin/env python3
"""XLA (JAX jit) references for issue 4's timing targets, on this machine, one thread.

Optional: needs `pip install jax` (CPU); the package's tests and benchmarks never use it.

    taskset -c 0 python3 scripts/xla_reference.py            # all cases
    taskset -c 0 python3 scripts/xla_reference.py --case gsa-content

Cases (float32, batch 1, C = d = 256, 8 heads):
  gsa-content   003 Appendix B Eq. 3-4: K, Q, V by 1x1 convolutions, K softmax over positions,
                C = K^T V, Y = Q C, at 56x56.
  gsa           the full module: Eq. 3-8 with Appendix B's one-hot re-indexing tensor I (Eq. 5-7),
                BN (inference affine) between the column and row passes, at 56x56, L = 56; with
                --gsa-form all, also two other formulations of the positional passes (the same
                values): `gather` (logits Q.R^T for all 2L-1 offsets, then take_along_axis) and
                `batched` (heads and lines as matmul batch dimensions, an index gather), so that
                the reference does not rest on one way of writing it.
  attention     full self-attention at 112x112 in query blocks of 256 (lax.map), softmax(Q K^T / sqrt(dk)) V,
                1x1 output projection and residual; inner width 128 (the non-local block's C/2) and 256.
Prints median milliseconds over repeated calls after compilation and a warm-up call.
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def timed(fn, *args, repetitions=9):
    jax.block_until_ready(fn(*args))  # compile + warm-up
    samples = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def gsa_content(x, wq, wk, wv, heads):
    # x [h, w, d]; Eq. 3: K_xynk = W_dnk X_xyd; Eq. 4.
    h, w, d = x.shape
    k = jnp.einsum("xyd,dnk->xynk", x, wk.reshape(d, heads, -1))
    q = jnp.einsum("xyd,dnk->xynk", x, wq.reshape(d, heads, -1))
    v = jnp.einsum("xyd,dnv->xynv", x, wv.reshape(d, heads, -1))
    k_hat = jax.nn.softmax(k.reshape(h * w, heads, -1), axis=0).reshape(k.shape)
    c = jnp.einsum("xynk,xynv->nkv", k_hat, v)
    return jnp.einsum("xynk,nkv->xynv", q, c), q, v


def reindex(length, extent):
    # Eq. 5: I[x, i, r] = 1 if i - x = r - (L - 1) and |i - x| <= L.
    xs = np.arange(length)[:, None, None]
    i = np.arange(length)[None, :, None]
    r = np.arange(2 * extent - 1)[None, None, :]
    return jnp.asarray(((i - xs) == (r - (extent - 1))) & (np.abs(i - xs) <= extent), dtype=jnp.float32)


def gsa_full(x, wq, wk, wv, rc, rr, scale, shift, heads, extent):
    h, w, d = x.shape
    yc, q, v = gsa_content(x, wq, wk, wv, heads)
    pc = jnp.einsum("xir,rk->xik", reindex(h, extent), rc)  # Eq. 6
    s = jnp.einsum("xynk,xik->xyin", q, pc)  # Eq. 7
    yh = jnp.einsum("xyin,iynv->xynv", s, v)
    yh = yh * scale.reshape(heads, -1) + shift.reshape(heads, -1)  # BN (inference)
    pr = jnp.einsum("yjr,rk->yjk", reindex(w, extent), rr)
    s = jnp.einsum("xynk,yjk->xyjn", q, pr)
    yw = jnp.einsum("xyjn,xjnv->xynv", s, yh)
    return yc + yw  # Eq. 8


def relative_index(length, extent):
    # [x, i] -> i - x + L - 1, the embedding row of offset i - x.
    return np.arange(length)[None, :] - np.arange(length)[:, None] + extent - 1


def gsa_full_gather(x, wq, wk, wv, rc, rr, scale, shift, heads, extent):
    h, w, d = x.shape
    yc, q, v = gsa_content(x, wq, wk, wv, heads)
    logits = jnp.einsum("xynk,rk->xynr", q, rc)  # every offset, then pick i - x + L - 1
    index = jnp.asarray(relative_index(h, extent))[:, None, None, :]
    s = jnp.take_along_axis(logits, jnp.broadcast_to(index, (h, w, heads, h)), axis=3)  # x y n i
    yh = jnp.einsum("xyni,iynv->xynv", s, v)
    yh = yh * scale.reshape(heads, -1) + shift.reshape(heads, -1)
    logits = jnp.einsum("xynk,rk->xynr", q, rr)
    index = jnp.asarray(relative_index(w, extent))[None, :, None, :]
    s = jnp.take_along_axis(logits, jnp.broadcast_to(index, (h, w, heads, w)), axis=3)  # x y n j
    return yc + jnp.einsum("xynj,xjnv->xynv", s, yh)


def gsa_full_batched(x, wq, wk, wv, rc, rr, scale, shift, heads, extent):
    h, w, d = x.shape
    yc, q, v = gsa_content(x, wq, wk, wv, heads)
    qc, vc = jnp.transpose(q, (1, 2, 0, 3)), jnp.transpose(v, (1, 2, 0, 3))  # y n x k: batches (y, n)
    s = (qc @ rc.T)[:, :, np.arange(h)[:, None], relative_index(h, extent)]  # y n x i
    yh = (s @ vc) * scale.reshape(1, heads, 1, -1) + shift.reshape(1, heads, 1, -1)
    yh = jnp.transpose(yh, (2, 1, 0, 3))  # x n y v
    qr = jnp.transpose(q, (0, 2, 1, 3))  # x n y k: batches (x, n)
    s = (qr @ rr.T)[:, :, np.arange(w)[:, None], relative_index(w, extent)]  # x n y j
    return yc + jnp.transpose(s @ yh, (0, 2, 1, 3))


def full_attention(x, wq, wk, wv, wo, bo, block):
    n, c = x.shape
    q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
    scale = 1.0 / np.sqrt(q.shape[1])

    def one_block(qb):
        return jax.nn.softmax((qb @ k.T) * scale, axis=-1) @ v

    o = jax.lax.map(one_block, q.reshape(n // block, block, -1)).reshape(n, -1)
    return o @ wo.T + bo + x


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["gsa-content", "gsa", "attention", "all"], default="all")
    parser.add_argument("--gsa-form", choices=["reindex", "all"], default="reindex",
                        help="positional formulation(s) of the gsa case: Appendix B's re-indexing tensor, "
                             "or that and the gather and batched forms (checked equal first)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    d, heads = 256, 8

    def normal(*shape, sigma=1.0):
        return jnp.asarray(rng.normal(0, sigma, shape), dtype=jnp.float32)

    print(f"jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS={os.environ['XLA_FLAGS']}")
    if args.case in ("gsa-content", "all", "gsa"):
        s = 56
        x = normal(s, s, d)
        wq, wk, wv = (normal(d, d, sigma=d ** -0.5) for _ in range(3))
        if args.case in ("gsa-content", "all"):
            f = jax.jit(lambda *a: gsa_content(*a, heads)[0])
            print(f"gsa-content d={d} {s}x{s}: {timed(f, x, wq, wk, wv):.2f} ms")
        if args.case in ("gsa", "all"):
            dk = d // heads
            rc, rr = normal(2 * s - 1, dk, sigma=dk ** -0.5), normal(2 * s - 1, dk, sigma=dk ** -0.5)
            scale, shift = normal(d, sigma=0.1) + 1, normal(d, sigma=0.1)
            forms = {"reindex": gsa_full, "gather": gsa_full_gather, "batched": gsa_full_batched}
            if args.gsa_form == "reindex":
                forms = {"reindex": gsa_full}
            a = (x, wq, wk, wv, rc, rr, scale, shift)
            functions = {name: jax.jit(lambda *a, form=form: form(*a, heads, s)) for name, form in forms.items()}
            reference = np.asarray(functions["reindex"](*a))
            for name, f in functions.items():
                error = float(np.max(np.abs(np.asarray(f(*a)) - reference)) / np.max(np.abs(reference)))
                assert error < 1e-5, f"gsa form {name} differs from reindex by {error:.1e} (relative)"
                print(f"gsa ({name}) d={d} {s}x{s} L={s}: {timed(f, *a):.2f} ms")
    if args.case in ("attention", "all"):
        s, block = 112, 256
        x = normal(s * s, d)
        for inner in (d // 2, d):
            wq, wk, wv = (normal(inner, d, sigma=d ** -0.5) for _ in range(3))
            wo, bo = normal(d, inner, sigma=inner ** -0.5), normal(d, sigma=0.1)
            f = jax.jit(lambda *a: full_attention(*a, block))
            ms = timed(f, x, wq, wk, wv, wo, bo, repetitions=3)
            print(f"attention s={s} inner={inner} query block {block}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
