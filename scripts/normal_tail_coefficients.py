"""Print the Chebyshev coefficients of the normal tail used by
service/inference/quantile_kernel.py, and their error against mpmath.

The kernel needs Phi(-a), a >= 0, to full float64 relative precision in one branch-free
formula (so the loop over draws vectorises):
    Phi(-a) = exp(-a^2/2) * G(u) / (a + K),   u = (a - K) / (a + K) in [-1, 1),
where G(u) = (a + K) * exp(a^2/2) * Phi(-a) is smooth on the whole half-line (it tends to
1/sqrt(2 pi) as a -> inf). G is interpolated in Chebyshev polynomials of u, then written as
a plain polynomial in u (its coefficients stay below 1 in magnitude, so Horner or Estrin
evaluation in float64 loses nothing) that the kernel evaluates.

Run: python scripts/normal_tail_coefficients.py  (needs mpmath; takes a few seconds).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

K = 4.0
TERMS = 24
NODES = 48

mp.mp.dps = 40


def scaled_tail(u: mp.mpf) -> mp.mpf:
    if u == 1:
        return 1 / mp.sqrt(2 * mp.pi)
    a = K * (1 + u) / (1 - u)
    return (a + K) * mp.exp(a * a / 2) * mp.ncdf(-a)


def coefficients() -> list[float]:
    """Monomial coefficients (in u, lowest first) of the Chebyshev interpolant at NODES
    first-kind nodes truncated to TERMS, converted in mpmath precision."""
    theta = [mp.pi * (j + mp.mpf(1) / 2) / NODES for j in range(NODES)]
    values = [scaled_tail(mp.cos(t)) for t in theta]
    cheb = []
    for m in range(TERMS):
        c = 2 * mp.fsum(values[j] * mp.cos(m * theta[j]) for j in range(NODES)) / NODES
        cheb.append(c / 2 if m == 0 else c)
    # T_0 = 1, T_1 = u, T_k = 2u T_{k-1} - T_{k-2}, as coefficient lists.
    out = [mp.mpf(0)] * TERMS
    previous, current = [mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]
    for k, c in enumerate(cheb):
        poly = previous if k == 0 else current
        if k >= 2:
            poly = [(2 * current[i - 1] if i >= 1 else 0) - (previous[i] if i < len(previous)
                                                               else 0) for i in range(k + 1)]
            previous, current = current, poly
        for i, v in enumerate(poly):
            out[i] += c * v
    return [float(c) for c in out]


def scaled_tail_approx(a: np.ndarray, c: list[float]) -> np.ndarray:
    """exp(a^2/2) Phi(-a) = G(u) / (a + K) by the kernel's formula (in numpy, Horner)."""
    r = 1.0 / (a + K)
    u = (a - K) * r
    g = np.zeros_like(a)
    for ck in c[::-1]:
        g = g * u + ck
    return r * g


def main() -> None:
    c = coefficients()
    print(f"_TAIL_K = {K}")
    for k in range(TERMS):
        print(f"_G{k} = {c[k]!r}")
    # Up to 37: beyond, Phi(-a) < 1e-300 is subnormal in float64 and loses digits anyway.
    a = np.concatenate([np.linspace(0.0, 10.0, 2001), np.geomspace(10.0, 37.0, 300)])
    exact = np.array([float(mp.ncdf(-mp.mpf(v))) for v in a])
    scaled = np.array([float(mp.ncdf(-mp.mpf(v)) * mp.exp(mp.mpf(v) ** 2 / 2)) for v in a])
    approx = scaled_tail_approx(a, c)
    print(f"max relative error of G(u) / (a + K): {np.max(np.abs(approx / scaled - 1)):.2e}")
    # Larger in the far tail only because a*a is rounded (relative error ~ a^2 * 1.1e-16):
    # the same conditioning as any Phi of a rounded argument.
    tail = np.exp(-0.5 * a * a) * approx
    print(f"max relative error of Phi(-a): {np.max(np.abs(tail / exact - 1)):.2e}")


if __name__ == "__main__":
    main()
