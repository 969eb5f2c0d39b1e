"""The fast posterior-predictive quantiles: network outputs and mixture-CDF roots in one
numba pass per block of strains, float64 throughout.

`service.inference.predictive.quantiles_reference` is the numpy reference this is tested
against; both solve, per strain and level q,
    F(y) = (1/S) sum_s Phi((y - mu_s) / sigma_s) = q
to 1e-12 x max(|mean|, total SD), so they agree to that tolerance (not bit for bit).

Why it is fast, and why it stays accurate:
- The network runs in float64 here (unlike service.inference.kernel's float32 summaries):
  quantiles keep the reference's precision. tanh, exp and log1p are polynomial/rational
  forms accurate to a few float64 ulps, with no libm call, so the loops over the strains of
  a block vectorise. mu_s and 1/sigma_s of a block stay in cache for every level and
  iteration instead of (draws x strains) temporaries.
- Phi(t) is exp(-t^2/2) times a Chebyshev series in u = (|t| - K) / (|t| + K), one
  formula for the whole line (relative error 4e-16 on the scaled tail; the coefficients and
  their check come from scripts/normal_tail_coefficients.py), and the normal density
  reuses the same exp.
- Start: the Cornish-Fisher expansion from the mixture's first four moments (one pass, no
  transcendental), clipped to the bracket [min_s, max_s] of the component quantiles, which
  provably holds the root. Then Halley steps (the derivative of the density costs one
  multiply-add per draw) under the reference's safeguards: a step leaving the bracket or
  not halving the previous one becomes bisection, so multimodal mixtures converge too.
  Converged strains leave the block's working set.
- Each strain's arithmetic does not depend on the other strains of its block or call, so
  the same strain gets the same bits from predict and from export.

docs/quantiles.md has the details. The module is longer than the project's others on
purpose: the elementary functions, the forward pass and the solver are one numba
compilation unit, and numba's disk cache notices edits only to the file that holds a
cached function, not to compiled functions it calls from other modules (so splitting it
would let a stale cache survive an edit). For the same reason the link codes are this
module's own constants.

Why one module of this size: the compiled forward pass, the mixture-CDF solver and
their block scheduling are one unit that must change together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic
from scipy.special import ndtri

from service.inference import interrupt, kernel, launches
from service.inference.posterior import Posterior

# Solved to this fraction of max(|mean|, total SD): the reference's tolerance.
RELATIVE_TOLERANCE = 1e-12
_MAX_ITERATIONS = 200
# A Halley step is accepted without a confirming evaluation when a bound on its error is
# below _MARGIN x the tolerance and the step is within the asymptotic regime (c2 h,
# c3 h^2 and c4 h^3 below _ASYMPTOTIC).
_MARGIN = 0.1
_ASYMPTOTIC = 1e-2
# Working set per block: draws x strains float64 values of mu and of 1/sigma (~256 KiB each).
_BLOCK_ELEMENTS = 32_768
_MIN_BLOCK, _MAX_BLOCK = 8, 512
# Work per strain and posterior draw, in nanoseconds on the reference machine with both
# cores (docs/performance.md; benchmarks/admission.py measures them): the float64 forward
# pass per network unit (kernel.network_units), and the solve per level.
FORWARD_NS_PER_UNIT = 0.2
LEVEL_NS = 15.0

# Phi(-a) = exp(-a^2/2) * G(u) / (a + K), u = (a - K) / (a + K), G a degree-23 polynomial
# (its coefficients and their check: scripts/normal_tail_coefficients.py).
_TAIL_K = 4.0
_G0 = 0.7552851304157514
_G1 = -0.6078966419718923
_G2 = 0.3871374007422266
_G3 = -0.1865218579596366
_G4 = 0.06039657489036092
_G5 = -0.007540188967386312
_G6 = -0.0034796923566515025
_G7 = 0.0016308184674099085
_G8 = 0.00013334420916014778
_G9 = -0.00023109501736277426
_G10 = -1.907676030719098e-06
_G11 = 3.514511190283765e-05
_G12 = 7.146021531267462e-07
_G13 = -5.921611045923978e-06
_G14 = -6.249551077565178e-07
_G15 = 1.0247851016552774e-06
_G16 = 2.647337281979868e-07
_G17 = -1.597739614223922e-07
_G18 = -7.878360342693638e-08
_G19 = 1.7844927772981415e-08
_G20 = 1.60673869573294e-08
_G21 = -5.873626764987191e-10
_G22 = -1.6886576966786735e-09
_G23 = -1.1997782031253095e-10
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# exp: x = n ln2 + r, |r| <= ln2 / 2, Taylor to r^13 (truncation 4e-18); ln2 split in two
# (Cody-Waite, the high part exact in n * hi) so r carries no rounding of n * ln2.
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93145751953125e-1, 1.42860682030941723212e-6
_EXP_MIN, _EXP_NORMAL_MIN, _EXP_MAX = -745.2, -708.0, 709.0
_SHIFT = 6755399441055744.0  # 1.5 * 2^52
_SHIFT_BITS = int(np.float64(_SHIFT).view(np.int64))
_E2, _E3, _E4, _E5 = 1 / 2, 1 / 6, 1 / 24, 1 / 120
_E6, _E7, _E8, _E9 = 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880
_E10, _E11, _E12, _E13 = 1 / 3628800, 1 / 39916800, 1 / 479001600, 1 / 6227020800
# tanh(x) = (1 - e) / (1 + e), e = exp(-2|x|): e < 2^-55 beyond this, so tanh rounds to 1.
_TANH_CLAMP = 19.5


@intrinsic
def _float64_from_bits(typingctx, bits):
    """Reinterpret an int64 as float64 (to build 2^n without a libm call)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_float64(typingctx, value):
    """Reinterpret a float64 as int64."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


def _jit(**options):
    # The summary kernel's options (fused multiply-adds only, so vectorised and scalar
    # remainder code round alike; disk cache when writable).
    return kernel._jit(**options)


@_jit(inline="always")
def _exp(x):
    """exp(x) to ~1 ulp for x in [-708, 709] (clamped there), vectorisable."""
    x = min(max(x, _EXP_NORMAL_MIN), _EXP_MAX)
    # Adding 1.5 * 2^52 rounds x / ln2 to an integer n held in the low mantissa bits: n as
    # an int64 without a float-to-int conversion (none is vectorised before AVX-512).
    shifted = x * _LOG2E + _SHIFT
    n = shifted - _SHIFT
    r = (x - n * _LN2_HI) - n * _LN2_LO
    k = _bits_of_float64(shifted) - _SHIFT_BITS
    return _exp_reduced(r) * _float64_from_bits((k + 1023) << 52)


@_jit(inline="always")
def _exp_tiny(x):
    """exp(x) for x <= 0 down to the subnormal results (0 below -745)."""
    x = max(x, _EXP_MIN)
    shifted = x * _LOG2E + _SHIFT
    n = shifted - _SHIFT
    r = (x - n * _LN2_HI) - n * _LN2_LO
    k = _bits_of_float64(shifted) - _SHIFT_BITS
    # 2^n as two factors that each stay a normal float64.
    half = _bits_of_float64(n * 0.5 + _SHIFT) - _SHIFT_BITS
    return (_exp_reduced(r) * _float64_from_bits((half + 1023) << 52)) * _float64_from_bits(
        (k - half + 1023) << 52)


@_jit(inline="always")
def _exp_reduced(r):
    """exp(r) for |r| <= ln2 / 2: Taylor to r^13 in two interleaved chains (even, odd)."""
    r2 = r * r
    even = (((((_E12 * r2 + _E10) * r2 + _E8) * r2 + _E6) * r2 + _E4) * r2 + _E2) * r2 + 1.0
    odd = (((((_E13 * r2 + _E11) * r2 + _E9) * r2 + _E7) * r2 + _E5) * r2 + _E3) * r2 + 1.0
    return even + r * odd


@_jit(inline="always")
def _tanh(x):
    """tanh(x) to ~2e-16 absolute (what the mean head needs), vectorisable."""
    a = min(abs(x), _TANH_CLAMP)
    e = _exp(-2.0 * a)
    t = (1.0 - e) / (1.0 + e)
    return t if x >= 0.0 else -t


@_jit(inline="always")
def _softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|); log1p(e) = 2 atanh(s), s = e / (2 + e)
    <= 1/3, by its odd series to s^33 (truncation below 2e-17 relative)."""
    e = _exp(-abs(x))
    s = e / (2.0 + e)
    s2 = s * s
    p = 1.0 / 33.0
    p = p * s2 + 1.0 / 31.0
    p = p * s2 + 1.0 / 29.0
    p = p * s2 + 1.0 / 27.0
    p = p * s2 + 1.0 / 25.0
    p = p * s2 + 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    return max(x, 0.0) + 2.0 * (s + s * (p * s2))


_EXP_LINK, _SOFTPLUS_LINK = 0, 1
_LINK_CODES = {"exp": _EXP_LINK, "softplus": _SOFTPLUS_LINK}


@_jit(inline="always")
def _noise(z, link):
    if link == _EXP_LINK:
        return _exp(z)
    return _softplus(z)


@_jit(inline="always")
def _scaled_tail(a):
    """exp(a^2/2) Phi(-a) for a >= 0. G(u) by Estrin's scheme (four short Horner chains in
    u^4): the dependency chain is a quarter of Horner's, so consecutive strains overlap."""
    r = 1.0 / (a + _TAIL_K)
    u = (a - _TAIL_K) * r
    u2 = u * u
    u4 = u2 * u2
    p0 = ((((_G20 * u4 + _G16) * u4 + _G12) * u4 + _G8) * u4 + _G4) * u4 + _G0
    p1 = ((((_G21 * u4 + _G17) * u4 + _G13) * u4 + _G9) * u4 + _G5) * u4 + _G1
    p2 = ((((_G22 * u4 + _G18) * u4 + _G14) * u4 + _G10) * u4 + _G6) * u4 + _G2
    p3 = ((((_G23 * u4 + _G19) * u4 + _G15) * u4 + _G11) * u4 + _G7) * u4 + _G3
    return r * ((p0 + u * p1) + u2 * (p2 + u * p3))


# --------------------------------------------------------------------------------------

@_jit()
def _forward(x, params, sizes, link, y_mean, y_scale, mu, isig, hidden, pre):
    """mu_s(x_i) and 1/sigma_s(x_i) in physical units for the block's strains x (lanes are
    strains; every draw's weights are broadcast scalars). params: float64 rows laid out as
    service.inference.kernel.pack_parameters."""
    m = x.size
    draws = params.shape[0]
    depth = sizes.size
    last = sizes[depth - 1]
    for s in range(draws):
        p = params[s]
        mu_s = mu[s]
        z = isig[s]  # the sigma head's input first, then 1 / sigma in place
        for i in range(m):
            mu_s[i] = 0.0
            z[i] = 0.0
        width = sizes[0]
        head = 2 * width
        for k in range(width):
            w, b = p[k], p[width + k]
            if depth == 1:
                wm, ws = p[head + k], p[head + width + k]
                for i in range(m):
                    t = _tanh(x[i] * w + b)
                    mu_s[i] += wm * t
                    z[i] += ws * t
            else:
                for i in range(m):
                    hidden[0, k, i] = _tanh(x[i] * w + b)
        cur, offset, fan_in = 0, 2 * width, width
        for layer in range(1, depth):
            width = sizes[layer]
            for k in range(width):
                bias = p[offset + fan_in * width + k]
                for i in range(m):
                    pre[i] = bias
                for j in range(fan_in):
                    w = p[offset + j * width + k]
                    for i in range(m):
                        pre[i] += w * hidden[cur, j, i]
                for i in range(m):
                    hidden[1 - cur, k, i] = _tanh(pre[i])
            cur = 1 - cur
            offset += fan_in * width + width
            fan_in = width
        if depth > 1:
            for k in range(last):
                wm, ws = p[offset + k], p[offset + last + k]
                for i in range(m):
                    mu_s[i] += wm * hidden[cur, k, i]
                    z[i] += ws * hidden[cur, k, i]
        bm, bs = p[2 * last + offset], p[2 * last + offset + 1]
        for i in range(m):
            mu_s[i] = y_mean + y_scale * (mu_s[i] + bm)
            z[i] = 1.0 / (y_scale * _noise(z[i] + bs, link))


@_jit()
def _start(mu, isig, zs, low, high, start, scale):
    """Brackets [min_s, max_s] of the component quantiles mu + sigma z for every level,
    the Cornish-Fisher start (clipped to the bracket) and the tolerance scale."""
    draws, m = mu.shape
    levels = zs.size
    mean = np.zeros(m)
    m2 = np.zeros(m)
    m3 = np.zeros(m)
    m4 = np.zeros(m)
    for row in range(levels):
        for i in range(m):
            low[row, i] = np.inf
            high[row, i] = -np.inf
    for s in range(draws):
        for i in range(m):
            mean[i] += mu[s, i]
    for i in range(m):
        mean[i] /= draws
    for s in range(draws):
        for i in range(m):
            sigma = 1.0 / isig[s, i]
            d = mu[s, i] - mean[i]
            v = sigma * sigma
            d2 = d * d
            m2[i] += d2 + v
            m3[i] += d * (d2 + 3.0 * v)
            m4[i] += d2 * d2 + 6.0 * d2 * v + 3.0 * v * v
            for row in range(levels):
                c = mu[s, i] + sigma * zs[row]
                low[row, i] = min(low[row, i], c)
                high[row, i] = max(high[row, i], c)
    for i in range(m):
        var = m2[i] / draws
        sd = math.sqrt(var)
        scale[i] = max(sd, abs(mean[i]))
        skew = (m3[i] / draws) / (var * sd) if var > 0.0 else 0.0
        kurt = (m4[i] / draws) / (var * var) - 3.0 if var > 0.0 else 0.0
        for row in range(levels):
            z = zs[row]
            w = (z + (z * z - 1.0) * skew / 6.0 + (z * z * z - 3.0 * z) * kurt / 24.0
                 - (2.0 * z * z * z - 5.0 * z) * skew * skew / 36.0)
            y = mean[i] + sd * w
            if not np.isfinite(y):
                y = mean[i] + sd * z
            start[row, i] = min(max(y, low[row, i]), high[row, i])


@_jit()
def _solve_level(mu, isig, level, low, high, y, scale, wmu, wisig, evaluations):
    """Solve F(y) = level for every strain of the block; y holds the start on entry and
    the quantile on return. `low`/`high` are the brackets (overwritten); wmu and wisig are
    scratch of mu's size."""
    draws, m = mu.shape
    upper = level > 0.5
    # In the upper tail work with the survival function (full relative precision near 1):
    # t is then (mu - y) / sigma and the excess (1 - q) - mean Phi(t).
    sign = -1.0 if upper else 1.0
    target = 1.0 - level if upper else level
    previous = np.empty(m)
    index = np.empty(m, np.int64)  # block column of each working-set lane
    n = 0
    for i in range(m):
        previous[i] = high[i] - low[i]
        if high[i] > low[i]:  # equal bounds: every component agrees, done
            index[n] = i
            n += 1
    # Working set: the unfinished strains' columns, packed (draws x n, row-major) so the
    # loop over them stays contiguous as strains finish.
    for s in range(draws):
        for j in range(n):
            wmu[s * n + j] = mu[s, index[j]]
            wisig[s * n + j] = isig[s, index[j]]
    wy = np.empty(n)
    for j in range(n):
        wy[j] = y[index[j]]
    cdf = np.empty(n)
    dens = np.empty(n)
    slope = np.empty(n)
    curve = np.empty(n)
    third = np.empty(n)
    done = np.zeros(n, np.bool_)
    inv_draws = 1.0 / draws
    for _ in range(_MAX_ITERATIONS):
        if n == 0:
            break
        evaluations[0] += n
        for j in range(n):
            cdf[j] = 0.0
            dens[j] = 0.0
            slope[j] = 0.0
            curve[j] = 0.0
            third[j] = 0.0
        for s in range(draws):
            base = s * n
            for j in range(n):
                inv = wisig[base + j]
                t = sign * (wy[j] - wmu[base + j]) * inv
                a = abs(t)
                e = _exp_tiny(-0.5 * a * a)
                tail = e * _scaled_tail(a)
                cdf[j] += tail if t <= 0.0 else 1.0 - tail
                w = e * inv
                dens[j] += w
                wi = w * inv
                slope[j] += t * wi
                wi2 = wi * inv
                curve[j] += (t * t - 1.0) * wi2
                third[j] += t * (t * t - 3.0) * wi2 * inv
        kept = 0
        for j in range(n):
            i = index[j]
            ya = wy[j]
            excess = (cdf[j] * inv_draws - target) * sign
            density = dens[j] * inv_draws * _INV_SQRT_2PI
            # The density's derivatives: mean of phi'(t) / sigma^2 = -t phi(t) / sigma^2 and
            # phi''(t) / sigma^3 = (t^2 - 1) phi(t) / sigma^3, in the real t = sign * t.
            derivative = -sign * slope[j] * inv_draws * _INV_SQRT_2PI
            second = curve[j] * inv_draws * _INV_SQRT_2PI
            lo = ya if excess < 0.0 else low[i]
            hi = ya if excess > 0.0 else high[i]
            step = excess / density
            # Halley's correction when it is a small one (else plain Newton).
            correction = excess * derivative / (2.0 * density * density)
            halley = abs(correction) <= 0.5
            if halley:
                step = step / (1.0 - correction)
            new = ya - step
            tolerance = RELATIVE_TOLERANCE * scale[i]
            converged = abs(step) <= tolerance
            if converged:
                to = min(max(new, lo), hi)
            elif np.isfinite(new) and lo < new < hi and abs(step) <= 0.5 * previous[i]:
                to = new
                if halley:
                    # Halley's error after the step is (c2^2 - c3) h^3 + O(h^4), with
                    # c_k = F^(k) / (k! F') (the h^4 term has c4, c2 c3 and c2^3). Bounded
                    # by magnitudes, not by that difference, which can cancel while the
                    # h^4 term does not (narrow components nearby). Below the tolerance,
                    # the step is accepted without evaluating F again to confirm.
                    c2 = abs(derivative / (2.0 * density))
                    c3 = abs(second / (6.0 * density))
                    c4 = abs(third[j] * inv_draws * _INV_SQRT_2PI / (24.0 * density))
                    h = abs(step)
                    bound = ((c2 * c2 + c3) * h * h * h
                             + 4.0 * (c2 * c2 * c2 + c2 * c3 + c4) * h * h * h * h)
                    converged = (c2 * h <= _ASYMPTOTIC and c3 * h * h <= _ASYMPTOTIC
                                 and c4 * h * h * h <= _ASYMPTOTIC
                                 and bound <= _MARGIN * tolerance)
            else:
                to = 0.5 * (lo + hi)
            finished = excess == 0.0 or converged or hi - lo <= tolerance
            previous[i] = abs(to - ya)
            if excess != 0.0:
                ya = to
            low[i], high[i] = lo, hi
            y[i] = ya
            wy[j] = ya
            done[j] = finished
            if not finished:
                kept += 1
        if kept < n:
            # Drop finished strains, in place: every element moves to a lower position.
            for s in range(draws):
                k = 0
                for j in range(n):
                    if not done[j]:
                        wmu[s * kept + k] = wmu[s * n + j]
                        wisig[s * kept + k] = wisig[s * n + j]
                        k += 1
            k = 0
            for j in range(n):
                if not done[j]:
                    index[k] = index[j]
                    wy[k] = wy[j]
                    k += 1
            for j in range(kept):
                done[j] = False
            n = kept


@_jit()
def _block(x, start, stop, params, sizes, link, y_mean, y_scale, zs, levels, out,
           evaluations):
    m = stop - start
    draws = params.shape[0]
    xb = x[start:stop].copy()
    mu = np.empty((draws, m))
    isig = np.empty((draws, m))
    hidden = np.empty((2, sizes.max(), m))
    pre = np.empty(m)
    _forward(xb, params, sizes, link, y_mean, y_scale, mu, isig, hidden, pre)
    n_levels = zs.size
    low = np.empty((n_levels, m))
    high = np.empty((n_levels, m))
    y = np.empty((n_levels, m))
    scale = np.empty(m)
    _start(mu, isig, zs, low, high, y, scale)
    wmu = np.empty(draws * m)
    wisig = np.empty(draws * m)
    for row in range(n_levels):
        _solve_level(mu, isig, levels[row], low[row], high[row], y[row], scale, wmu, wisig,
                     evaluations)
        for i in range(m):
            out[row, start + i] = y[row, i]


@_jit(parallel=True)
def _parallel(x, params, sizes, link, y_mean, y_scale, zs, levels, block, out, evaluations):
    n_blocks = (x.size + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        _block(x, start, min(start + block, x.size), params, sizes, link, y_mean, y_scale,
               zs, levels, out, evaluations[b:b + 1])


@_jit()
def _serial(x, params, sizes, link, y_mean, y_scale, zs, levels, block, out, evaluations):
    for start in range(0, x.size, block):
        _block(x, start, min(start + block, x.size), params, sizes, link, y_mean, y_scale,
               zs, levels, out, evaluations)


def block_size(draws: int) -> int:
    """Strains per block: the block's mu and 1/sigma stay in cache."""
    size = _BLOCK_ELEMENTS // max(draws, 1)
    return int(min(max(size - size % 4, _MIN_BLOCK), _MAX_BLOCK))


class QuantileKernel:
    """The fast quantiles bound to one model version's float64 parameters."""

    def __init__(self, weights: Sequence[tuple[np.ndarray, np.ndarray]], noise_link: str,
                 x_mean: float, x_scale: float, y_mean: float, y_scale: float) -> None:
        self.params = kernel.pack_parameters(weights, dtype=np.float64)
        self.sizes = np.array([w.shape[2] for w, _ in weights[:-2]], dtype=np.int64)
        self.link = _LINK_CODES[noise_link]
        self.x_mean, self.x_scale = float(x_mean), float(x_scale)
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)
        self.draws = self.params.shape[0]
        self.units = kernel.network_units(self.sizes.tolist())
        self.block = block_size(self.draws)
        self.evaluations = 0  # strain x level evaluations of F over all draws (diagnostic)

    def quantiles(self, strain: np.ndarray, levels: Sequence[float]) -> np.ndarray:
        """Quantiles of the posterior predictive, shape (len(levels), len(strain))."""
        strain = np.asarray(strain, dtype=np.float64).ravel()
        # Normalised exactly as Posterior.network_outputs does.
        x = np.ascontiguousarray((strain - self.x_mean) / self.x_scale)
        level_array = np.asarray(levels, dtype=np.float64)
        zs = np.ascontiguousarray(ndtri(level_array))
        out = np.empty((level_array.size, x.size))
        if x.size == 0 or level_array.size == 0:
            return out
        # Launches of about launches.LAUNCH_NS each (strains x draws x levels), taking
        # turns with other requests'; at least two blocks, smaller ones when a block of
        # the cache-sized length would be more work than that.
        ns_per_strain = self.draws * (self.units * FORWARD_NS_PER_UNIT
                                      + level_array.size * LEVEL_NS)
        step = launches.strains_per_launch(ns_per_strain, 2 * _MIN_BLOCK)
        block = min(self.block, max(_MIN_BLOCK, step // 2 - (step // 2) % 4))
        for first in range(0, x.size, step):
            interrupt.checkpoint()
            part = x[first:first + step]
            piece = np.empty((level_array.size, part.size))
            n_blocks = -(-part.size // block)
            counts = np.zeros(n_blocks, np.int64)
            if n_blocks > 1:
                with launches.parallel_lock:
                    _parallel(part, self.params, self.sizes, self.link, self.y_mean,
                              self.y_scale, zs, level_array, block, piece, counts)
            else:
                _serial(part, self.params, self.sizes, self.link, self.y_mean, self.y_scale,
                        zs, level_array, block, piece, counts)
            out[:, first:first + part.size] = piece
            self.evaluations += int(counts.sum())
        return out


def for_posterior(posterior: Posterior) -> QuantileKernel | None:
    """The kernel for a loaded model version, or None where the architecture is one the
    summary kernel does not compute either (then callers use the numpy reference). Cheap:
    it only packs the parameters."""
    if posterior.kernel is None:
        return None
    return QuantileKernel(posterior.weights, posterior.noise_link, posterior.x_mean,
                          posterior.x_scale, posterior.y_mean, posterior.y_scale)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every variant: depth 1 and deeper, both
    noise links, one block and several."""
    rng = np.random.default_rng(0)
    for sizes in ((3,), (3, 2)):
        shapes, fan_in, weights = [], 1, []
        for width in sizes:
            shapes.append((fan_in, width))
            fan_in = width
        shapes += [(fan_in, 1), (fan_in, 1)]
        for fan_in, fan_out in shapes:
            weights.append((rng.normal(size=(4, fan_in, fan_out)), rng.normal(size=(4, fan_out))))
        for link in _LINK_CODES:
            fast = QuantileKernel(weights, link, 0.0, 1.0, 0.0, 1.0)
            for n in (1, 3 * fast.block):
                fast.quantiles(np.linspace(-1.0, 1.0, n), [0.1, 0.9])


warm_up()
