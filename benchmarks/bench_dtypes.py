"""One Adam step on complex and 16-bit params: npopt beside optax and torch.

    python benchmarks/bench_dtypes.py                     # npopt (+ torch if installed)
    python benchmarks/bench_dtypes.py --jax-python PY     # + optax under jax.jit, run by PY

Per dtype (float32, complex64, float16, bfloat16) and size: the best of 7
repeats of the mean time of one step, in microseconds, with GB/s for the
bytes Adam must move (read g, p, mu, nu; write p, mu, nu). npopt: ``step``
(fused and in place for float32 and complex64; update + apply_updates for
the 16-bit dtypes, whose buffers are converted to float32 around the
kernel). optax: ``jax.jit`` of update + apply_updates, donated buffers.
torch: ``torch.optim.Adam(foreach=True)``; bfloat16 and complex64 params are
torch's own.
"""
import argparse
import json
import subprocess
import sys
import time

SIZES = (1_000, 1_000_000)
DTYPES = ("float32", "complex64", "float16", "bfloat16")
REPEATS = 7


def _best(fn, n):
    fn()
    k = max(5, 300_000 // n)
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(k):
            fn()
        best = min(best, (time.perf_counter() - t) / k)
    return best


def _np_dtype(name):
    import numpy as np
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def bench_npopt():
    import numpy as np

    import npopt
    out = {}
    for name in DTYPES:
        dt = _np_dtype(name)
        for n in SIZES:
            opt = npopt.adam(1e-3)
            box = [np.ones(n, dt), None]
            box[1] = opt.init(box[0])
            g = np.full(n, 0.1, dt)

            def step():
                box[0], box[1] = opt.step(box[0], g, box[1])
            out[f"{name}/{n}"] = _best(step, n)
    return out


def bench_torch():
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(1)
    out = {}
    for name in DTYPES:
        dt = getattr(torch, name)
        for n in SIZES:
            p = torch.nn.Parameter(torch.ones(n, dtype=dt))
            p.grad = torch.full((n,), 0.1, dtype=dt)
            opt = torch.optim.Adam([p], lr=1e-3, foreach=True)
            out[f"{name}/{n}"] = _best(opt.step, n)
    return out


def bench_optax():
    import jax
    import jax.numpy as jnp
    import optax
    out = {}
    for name in DTYPES:
        for n in SIZES:
            opt = optax.adam(1e-3)
            p = jnp.ones(n, name)
            g = jnp.full(n, 0.1, name)

            @jax.jit
            def step(p, s, g):
                u, s = opt.update(g, s, p)
                return optax.apply_updates(p, u), s
            box = [p, opt.init(p)]

            def run():
                box[0], box[1] = step(box[0], box[1], g)
                box[0].block_until_ready()
            out[f"{name}/{n}"] = _best(run, n)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jax-python", help="an interpreter with jax and optax 0.2.8")
    ap.add_argument("--optax-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.optax_only:
        print(json.dumps(bench_optax()))
        return
    import os
    os.environ.setdefault("NPOPT_PARALLEL_THRESHOLD", str(1 << 62))   # one core, as torch
    res = {"npopt": bench_npopt(), "torch": bench_torch()}
    if args.jax_python:
        env = dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
                   "intra_op_parallelism_threads=1")
        r = subprocess.run([args.jax_python, __file__, "--optax-only"], capture_output=True,
                           text=True, env=env)
        res["optax"] = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    item = {"float32": 4, "complex64": 8, "float16": 2, "bfloat16": 2}
    print(f"{'dtype':>10} {'n':>8} " + " ".join(f"{k + ' us':>12}" for k in res)
          + "   npopt GB/s")
    for name in DTYPES:
        for n in SIZES:
            key = f"{name}/{n}"
            cells = " ".join(f"{res[k][key] * 1e6:12.1f}" if key in res[k] else f"{'-':>12}"
                             for k in res)
            gbs = 7 * n * item[name] / res["npopt"][key] / 1e9
            print(f"{name:>10} {n:>8} {cells}   {gbs:6.1f}")


if __name__ == "__main__":
    sys.exit(main())
