"""assay.stats.sequential.hedged_cs against the authors' own implementation, confseq.betting.hedged_cs (confseq 0.0.11).

confseq does not install on Python >= 3.11 from PyPI (its build pins pybind11~=2.6.0, which does not compile against
3.11's headers) and its Python modules use np.float_ (gone in NumPy 2), so this runs in a throwaway venv where it was
built by hand:

    apt-get install -y libboost-math-dev                        # Boost headers for its C++ part
    python -m venv /tmp/csvenv
    /tmp/csvenv/bin/pip install "numpy<2" "scipy<1.14" matplotlib multiprocess pandas "pybind11>=2.10" \
        scikit-build cmake setuptools wheel
    /tmp/csvenv/bin/pip install --no-build-isolation --no-deps confseq==0.0.11
    /tmp/csvenv/bin/python benchmarks/confseq_crosscheck.py     # from the repository root

Prints the largest absolute difference between the two (l_t, u_t) paths for several sequences and alphas, one pass
and in batches of 25 (expected: 0 everywhere), and the reference values pinned in tests/test_gate_stats.py.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from confseq.betting import hedged_cs as reference  # noqa: E402

from assay.stats.sequential import HedgedCS, hedged_cs  # noqa: E402


def paired(rng, n, p10, p01):
    u = rng.random(n)
    return (np.where(u < p10, -1.0, np.where(u < p10 + p01, 1.0, 0.0)) + 1) / 2


def main() -> None:
    rng = np.random.default_rng(2024)
    seqs = {"paired binary p10=.10 p01=.05 n=400": paired(rng, 400, .10, .05),
            "paired binary p10=.02 p01=.02 n=600": paired(rng, 600, .02, .02),
            "uniform n=300": rng.random(300),
            "beta(2,5) n=500": rng.beta(2, 5, 500),
            "bernoulli(.9) n=300": (rng.random(300) < .9).astype(float)}
    worst = 0.0
    print("| sequence | alpha | max abs diff, one pass | in batches of 25 | confseq's final CS |")
    print("|---|---|---|---|---|")
    for name, x in seqs.items():
        for alpha in (0.05, 0.1):
            l0, u0 = reference(x, alpha=alpha)
            l1, u1 = hedged_cs(x, alpha)
            cs = HedgedCS(alpha)
            parts = [cs.update(x[i:i + 25]) for i in range(0, len(x), 25)]
            l2, u2 = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            d1 = max(np.abs(l0 - l1).max(), np.abs(u0 - u1).max())
            d2 = max(np.abs(l0 - l2).max(), np.abs(u0 - u2).max())
            worst = max(worst, d1, d2)
            print(f"| {name} | {alpha} | {d1:.3g} | {d2:.3g} | [{l0[-1]:.3f}, {u0[-1]:.3f}] |")
    print(f"\nworst difference: {worst:.3g}")
    r = np.random.default_rng(7).random(300)
    x = (np.where(r < .08, -1.0, np.where(r < .12, 1.0, 0.0)) + 1) / 2
    l0, u0 = reference(x, alpha=0.05)
    print("reference for tests/test_gate_stats.py:",
          {t: (float(l0[t - 1]), float(u0[t - 1])) for t in (10, 50, 100, 200, 300)})


if __name__ == "__main__":
    main()
