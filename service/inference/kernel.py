"""The fast predict kernel: the predictive summaries in one pass over the posterior draws.

`service.inference.posterior` keeps the plain-numpy reference; this module computes the same
numbers (mean, aleatoric SD, epistemic SD and, when asked, the tangent d mean/d strain
and its SD over draws) about 30x faster, for any depth and width of the tanh trunk.

How it is fast, and why it stays accurate:
- Weights and activations are float32 (twice the SIMD lanes of float64), the tanh is a
  degree 7/8 rational minimax approximation (max absolute error 5.0e-6 in float32) and
  exp/log are short polynomials, so the hot loops vectorise (numba, fastmath, AVX2/AVX-512).
- Sums over draws are accumulated in float64, shifted by the first draw's value (the
  "shifted data" variance algorithm), so the epistemic SD has no catastrophic
  cancellation even when it is tiny beside the mean. Statistics are taken in the
  network's normalised units and converted to physical units at the end.
- Two layouts: for many strains, SIMD lanes are strains (blocks of strains, one block per
  core via `prange`, each weight a broadcast scalar); for a few strains, lanes are draws
  (a transposed copy of the weights), so a one-strain request costs microseconds.
- Compiled when this module is imported (or loaded from the on-disk cache that
  `surrogate-serve warmup` fills, kernel_cache.py), and run once there, so no
  request pays for compilation.

It is longer than the project's other modules on purpose: the elementary functions, both
layouts and their drivers are one numba compilation unit that is read, tuned and tested
together against the reference.

Why one module of this size: the compiled loops, their float32 packing and the
dispatcher that chooses a variant are one unit that must change together.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np

# GNU OpenMP (numba's parallel backend here) otherwise spins its idle threads after every
# parallel call, taking CPU from the event loop serving the next requests. Read when the
# OpenMP library loads (the first parallel call), so set before warm_up below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.core.errors import NumbaWarning  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

from service.inference import interrupt, kernel_cache, launches  # noqa: E402

# --------------------------------------------------------------------------------------
# Elementary functions in float32 that LLVM can vectorise (no libm calls in the hot loop).

_F = np.float32

# tanh(x) ~ x P(x^2) / Q(x^2), degrees 7/8, clamped at |x| = 6.45 (where 1 - tanh(x) is
# 5e-6). Coefficients fitted by minimax (differential correction) on [0, 6.45]; max
# absolute error 5.0e-6 evaluated in float32, well inside the kernel's 1e-3 x total-SD
# error budget (docs/architecture.md says why this degree).
_TANH_CLAMP = _F(6.45)
_A1, _A3, _A5, _A7 = _F(9.99999849e-01), _F(1.30303448e-01), _F(3.06633603e-03), _F(1.27659804e-05)
_B2, _B4, _B6, _B8 = _F(4.63636174e-01), _F(2.42791050e-02), _F(2.55453066e-04), _F(2.90986840e-07)

# Cephes expf: exp(x) = 2^n * exp(r), |r| <= ln2/2, degree-7 polynomial.
_EXP_LO, _EXP_HI = _F(-87.0), _F(88.0)
_LOG2E, _HALF, _ONE, _TWO, _ZERO = _F(1.44269504088896341), _F(0.5), _F(1.0), _F(2.0), _F(0.0)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)

# log1p(t) for t in [0, 1] as 2 atanh(s), s = t / (2 + t) <= 1/3: odd series to s^13
# (truncation below 1e-8).
_L3, _L5, _L7 = _F(1.0 / 3.0), _F(1.0 / 5.0), _F(1.0 / 7.0)
_L9, _L11, _L13 = _F(1.0 / 9.0), _F(1.0 / 11.0), _F(1.0 / 13.0)

EXP_LINK, SOFTPLUS_LINK = 0, 1
NOISE_LINK_CODES = {"exp": EXP_LINK, "softplus": SOFTPLUS_LINK}


# Only fused multiply-adds and signed-zero freedom: no approximate division or reassociation,
# so vectorised and scalar (remainder) code round identically and a strain's answer does
# not depend on the batch it came in or its position in it.
_FASTMATH = {"contract", "nsz"}


def _jit(**options):
    """numba.njit with the kernel's options; compiled code is cached on disk
    (kernel_cache.py: NUMBA_CACHE_DIR, also read-only), else compiled once per process."""
    # error_model="numpy": no ZeroDivisionError checks, whose branches stop vectorisation.
    options = {"nogil": True, "fastmath": _FASTMATH, "error_model": "numpy", **options}

    def decorate(func):
        return kernel_cache.enable(njit(**options)(func))

    return decorate


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32 as float32 (to build 2^n without a libm call)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_jit(inline="always")
def _tanh(x):
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = ((_A7 * x2 + _A5) * x2 + _A3) * x2 + _A1
    q = (((_B8 * x2 + _B6) * x2 + _B4) * x2 + _B2) * x2 + _ONE
    return x * p / q


@_jit(inline="always")
def _exp(x):
    x = min(max(x, _EXP_LO), _EXP_HI)
    n = np.floor(x * _LOG2E + _HALF)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = (((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5)
    p = p * (r * r) + r + _ONE
    return p * _float32_from_bits(np.int32((np.int32(n) + 127) << 23))


@_jit(inline="always")
def _softplus(x):
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|), never overflowing.
    t = _exp(-abs(x))
    s = t / (_TWO + t)
    s2 = s * s
    series = (((((_L13 * s2 + _L11) * s2 + _L9) * s2 + _L7) * s2 + _L5) * s2 + _L3) * s2
    half_log1p = s * series + s
    # Additions only from here: no multiply the compiler could fuse in one context only.
    return max(x, _ZERO) + (half_log1p + half_log1p)


@_jit(inline="always")
def _noise(z, link):
    if link == EXP_LINK:
        return _exp(z)
    return _softplus(z)


# --------------------------------------------------------------------------------------
# Parameter layout. Every draw's parameters are one float32 row:
#   trunk layer l: W (fan_in x width, row-major), b (width); then the heads:
#   mean W (width), sigma W (width), mean b, sigma b.

def pack_parameters(weights: Sequence[tuple[np.ndarray, np.ndarray]],
                    dtype: type = np.float32) -> np.ndarray:
    """(draws, n_params) rows from per-layer (W (draws, fan_in, fan_out), b)."""
    *trunk, (w_mean, b_mean), (w_sigma, b_sigma) = weights
    draws = w_mean.shape[0]
    parts = []
    for weight, bias in trunk:
        parts += [weight.reshape(draws, -1), bias.reshape(draws, -1)]
    parts += [w_mean.reshape(draws, -1), w_sigma.reshape(draws, -1),
              b_mean.reshape(draws, 1), b_sigma.reshape(draws, 1)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=dtype)


# --------------------------------------------------------------------------------------
# Per-draw statistics are accumulated in float64 into `acc` rows, shifted by draw 0:
_S1, _S2, _SIGMA2, _T1, _T2, _SHIFT, _TSHIFT = range(7)
_N_ACC = 7


@_jit()
def _hidden_layer(params, offset, fan_in, width, src, dsrc, dst, ddst, tangent, pre, dpre):
    """dst[k] = tanh(b_k + sum_j W_jk src[j]) over the lanes (and its forward derivative)."""
    m = pre.size
    for k in range(width):
        bias = params[offset + fan_in * width + k]
        for i in range(m):
            pre[i] = bias
            dpre[i] = 0.0
        for j in range(fan_in):
            w = params[offset + j * width + k]
            for i in range(m):
                pre[i] += w * src[j, i]
            if tangent:
                for i in range(m):
                    dpre[i] += w * dsrc[j, i]
        if tangent:
            for i in range(m):
                t = _tanh(pre[i])
                dst[k, i] = t
                ddst[k, i] = (_ONE - t * t) * dpre[i]
        else:
            for i in range(m):
                dst[k, i] = _tanh(pre[i])


@_jit()
def _strain_block(x_all, cov_all, start, stop, params, cov_w, mean_bias, sizes, link, tangent,
                  acc_out):
    """Lanes are strains: every draw's weights are broadcast over the block's strains.

    Reads normalised strains x_all[start:stop] (float32) and writes acc_out[:, start:stop]
    (float64). Works on contiguous block-local arrays, which keeps every loop vectorised.

    A model with covariates answers each strain at its own condition: cov_all (k, n) holds
    the normalised covariates, cov_w (draws, k * width) the first layer's covariate
    weights (column j * width + u: covariate j into unit u); their part of a unit's
    pre-activation joins its bias, per strain. Without covariates both are None, and
    Numba compiles the `is None` branches away: the strain-only code is unchanged.
    """
    m = stop - start
    x = x_all[start:stop].copy()
    cov = None if cov_all is None else cov_all[:, start:stop].copy()
    unit_bias = np.empty(m, np.float32)
    acc = np.empty((_N_ACC, m), np.float64)
    draws = params.shape[0]
    depth = sizes.size
    width_max = sizes.max()
    last = sizes[depth - 1]
    h = np.empty((2, width_max, m), np.float32)
    dh = np.empty((2, width_max, m), np.float32)
    mu = np.empty(m, np.float32)
    z = np.empty(m, np.float32)
    dmu = np.empty(m, np.float32)
    pre = np.empty(m, np.float32)
    dpre = np.empty(m, np.float32)
    for r in range(_N_ACC):
        for i in range(m):
            acc[r, i] = 0.0
    for s in range(draws):
        p = params[s]
        for i in range(m):
            mu[i] = 0.0
            z[i] = 0.0
            dmu[i] = 0.0
        # The first layer has one input; with no deeper layer it feeds the heads directly
        # (the trainer's default, fused so the hidden state never leaves registers).
        width = sizes[0]
        head = 2 * width
        for k in range(width):
            w, b = p[k], p[width + k]
            if cov is not None:
                for i in range(m):
                    unit_bias[i] = b
                for j in range(cov.shape[0]):
                    wc = cov_w[s, j * width + k]
                    for i in range(m):
                        unit_bias[i] += wc * cov[j, i]
            if depth == 1:
                wm, ws = p[head + k], p[head + width + k]
                wmw = wm * w
                if tangent:
                    for i in range(m):
                        t = _tanh(x[i] * w + (b if cov is None else unit_bias[i]))
                        mu[i] += wm * t
                        z[i] += ws * t
                        dmu[i] += wmw * (_ONE - t * t)
                else:
                    for i in range(m):
                        t = _tanh(x[i] * w + (b if cov is None else unit_bias[i]))
                        mu[i] += wm * t
                        z[i] += ws * t
            elif tangent:
                for i in range(m):
                    t = _tanh(x[i] * w + (b if cov is None else unit_bias[i]))
                    h[0, k, i] = t
                    dh[0, k, i] = w * (_ONE - t * t)
            else:
                for i in range(m):
                    h[0, k, i] = _tanh(x[i] * w + (b if cov is None else unit_bias[i]))
        # Deeper layers, then both heads read the last hidden state.
        cur, offset, fan_in = 0, 2 * width, width
        for layer in range(1, depth):
            width = sizes[layer]
            _hidden_layer(p, offset, fan_in, width, h[cur], dh[cur], h[1 - cur], dh[1 - cur],
                          tangent, pre, dpre)
            cur = 1 - cur
            offset += fan_in * width + width
            fan_in = width
        if depth > 1:
            for k in range(last):
                wm, ws = p[offset + k], p[offset + last + k]
                for i in range(m):
                    mu[i] += wm * h[cur, k, i]
                    z[i] += ws * h[cur, k, i]
                if tangent:
                    for i in range(m):
                        dmu[i] += wm * dh[cur, k, i]
        bs = p[2 * last + offset + 1]
        # The mean head's bias stays float64: a large common offset costs no precision.
        bm64 = mean_bias[s]
        if s == 0:
            for i in range(m):
                acc[_SHIFT, i] = np.float64(mu[i]) + bm64
                acc[_TSHIFT, i] = dmu[i]
        for i in range(m):
            d = (np.float64(mu[i]) + bm64) - acc[_SHIFT, i]
            acc[_S1, i] += d
            acc[_S2, i] += d * d
            sigma = np.float64(_noise(z[i] + bs, link))
            acc[_SIGMA2, i] += sigma * sigma
        if tangent:
            for i in range(m):
                d = np.float64(dmu[i]) - acc[_TSHIFT, i]
                acc[_T1, i] += d
                acc[_T2, i] += d * d
    for r in range(_N_ACC):
        for i in range(m):
            acc_out[r, start + i] = acc[r, i]


@_jit()
def _draw_lanes(x, cov, start, stop, params_t, cov_t, mean_bias, sizes, link, tangent, acc):
    """Lanes are draws: params_t is (n_params, draws), one strain x[i] (start <= i < stop)
    at a time, into acc[:, i]. Same outputs as _strain_block.

    With covariates (as in _strain_block), cov is (k, n) and cov_t (k * width, draws): row
    j * width + u holds covariate j's weight into unit u for every draw. Both None
    without covariates."""
    draws = params_t.shape[1]
    unit_bias = np.empty(draws, np.float32)
    depth = sizes.size
    width_max = sizes.max()
    last = sizes[depth - 1]
    h = np.empty((2, width_max, draws), np.float32)
    dh = np.empty((2, width_max, draws), np.float32)
    mu = np.empty(draws, np.float32)
    z = np.empty(draws, np.float32)
    dmu = np.empty(draws, np.float32)
    pre = np.empty(draws, np.float32)
    dpre = np.empty(draws, np.float32)
    for i in range(start, stop):
        xi = x[i]
        for s in range(draws):
            mu[s] = 0.0
            z[s] = 0.0
            dmu[s] = 0.0
        width = sizes[0]
        head = 2 * width
        for k in range(width):
            w, b = params_t[k], params_t[width + k]
            if cov is not None:
                for s in range(draws):
                    unit_bias[s] = b[s]
                for j in range(cov.shape[0]):
                    cj = cov[j, i]
                    wc = cov_t[j * width + k]
                    for s in range(draws):
                        unit_bias[s] += cj * wc[s]
                b = unit_bias
            if depth == 1:
                wm, ws = params_t[head + k], params_t[head + width + k]
                for s in range(draws):
                    t = _tanh(xi * w[s] + b[s])
                    mu[s] += wm[s] * t
                    z[s] += ws[s] * t
                if tangent:
                    for s in range(draws):
                        t = _tanh(xi * w[s] + b[s])
                        dmu[s] += wm[s] * w[s] * (_ONE - t * t)
            else:
                for s in range(draws):
                    t = _tanh(xi * w[s] + b[s])
                    h[0, k, s] = t
                    dh[0, k, s] = w[s] * (_ONE - t * t)
        # Deeper layers (derivatives always carried: a few strains cost little), then heads.
        cur, offset, fan_in = 0, 2 * width, width
        for layer in range(1, depth):
            width = sizes[layer]
            for k in range(width):
                bias = params_t[offset + fan_in * width + k]
                for s in range(draws):
                    pre[s] = bias[s]
                    dpre[s] = 0.0
                for j in range(fan_in):
                    w = params_t[offset + j * width + k]
                    for s in range(draws):
                        pre[s] += w[s] * h[cur, j, s]
                        dpre[s] += w[s] * dh[cur, j, s]
                for s in range(draws):
                    t = _tanh(pre[s])
                    h[1 - cur, k, s] = t
                    dh[1 - cur, k, s] = (_ONE - t * t) * dpre[s]
            cur = 1 - cur
            offset += fan_in * width + width
            fan_in = width
        if depth > 1:
            for k in range(last):
                wm, ws = params_t[offset + k], params_t[offset + last + k]
                for s in range(draws):
                    mu[s] += wm[s] * h[cur, k, s]
                    z[s] += ws[s] * h[cur, k, s]
                    dmu[s] += wm[s] * dh[cur, k, s]
        bs = params_t[2 * last + offset + 1]
        shift = np.float64(mu[0]) + mean_bias[0]
        tshift = np.float64(dmu[0])
        s1 = s2 = sigma2 = t1 = t2 = 0.0
        for s in range(draws):
            d = (np.float64(mu[s]) + mean_bias[s]) - shift
            s1 += d
            s2 += d * d
            sigma = np.float64(_noise(z[s] + bs[s], link))
            sigma2 += sigma * sigma
        if tangent:
            for s in range(draws):
                d = np.float64(dmu[s]) - tshift
                t1 += d
                t2 += d * d
        acc[_S1, i], acc[_S2, i], acc[_SIGMA2, i] = s1, s2, sigma2
        acc[_T1, i], acc[_T2, i], acc[_SHIFT, i], acc[_TSHIFT, i] = t1, t2, shift, tshift


@_jit()
def _serial(x, cov, params, params_t, cov_w, cov_t, mean_bias, sizes, link, tangent, block,
            acc):
    """One thread; draws as lanes when there are fewer strains than SIMD lanes."""
    if x.size < _DRAW_LANES_BELOW:
        _draw_lanes(x, cov, 0, x.size, params_t, cov_t, mean_bias, sizes, link, tangent, acc)
        return
    for start in range(0, x.size, block):
        _strain_block(x, cov, start, min(start + block, x.size), params, cov_w, mean_bias,
                      sizes, link, tangent, acc)


@_jit(parallel=True)
def _parallel(x, cov, params, cov_w, mean_bias, sizes, link, tangent, block, acc):
    """Blocks of strains spread over the cores."""
    n_blocks = (x.size + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        _strain_block(x, cov, start, min(start + block, x.size), params, cov_w, mean_bias,
                      sizes, link, tangent, acc)


# Fewer strains than this: SIMD lanes are draws. More than _PARALLEL_FROM: both cores.
_DRAW_LANES_BELOW = 16
PARALLEL_FROM = 256
BLOCK = 256

# Work of the summaries per strain, posterior draw and network unit (network_units), in
# nanoseconds on the reference machine with both cores (docs/performance.md; measured by
# benchmarks/admission.py). The tangent costs this factor more.
SUMMARY_NS_PER_UNIT = 0.055
TANGENT_FACTOR = 1.5


def network_units(hidden_sizes: Sequence[int], covariates: int = 0) -> int:
    """A network's size per strain and draw, for cost estimates: its weights and biases,
    plus 4 per hidden unit (a tanh costs about four multiply-adds here), plus the
    covariates' weights when each strain has its own condition."""
    units, fan_in = covariates * hidden_sizes[0], 1
    for width in hidden_sizes:
        units += (fan_in + 1) * width + 4 * width
        fan_in = width
    return units + 2 * (fan_in + 1) + 8  # the mean and sigma heads, the noise link


class Kernel:
    """The fast kernel bound to one model version's packed float32 parameters.

    A model with covariates (a first layer of 1 + k inputs) gets its strain column packed
    as usual and its covariate columns beside (`cov_w`): `statistics` then takes each
    strain's normalised condition and answers it there."""

    def __init__(self, weights: Sequence[tuple[np.ndarray, np.ndarray]], noise_link: str,
                 x_mean: float, x_scale: float, y_mean: float, y_scale: float) -> None:
        (w_first, b_first), *rest = weights
        self.covariates = w_first.shape[1] - 1
        self.params = pack_parameters([(w_first[:, :1, :], b_first), *rest])
        self.params_t = np.ascontiguousarray(self.params.T)
        draws, width = w_first.shape[0], w_first.shape[2]
        # Column j * width + u: covariate j into unit u, one row per draw (and transposed,
        # one column per draw, for the draw-lanes path); None without covariates.
        self.cov_w = self.cov_t = None
        if self.covariates:
            self.cov_w = np.ascontiguousarray(
                w_first[:, 1:, :].reshape(draws, self.covariates * width), dtype=np.float32)
            self.cov_t = np.ascontiguousarray(self.cov_w.T)
        # float64 copy of the mean head's bias (its float32 slot in params goes unused).
        self.mean_bias = np.ascontiguousarray(weights[-2][1][:, 0], dtype=np.float64)
        self.draws = self.params.shape[0]
        self.sizes = np.array([w.shape[2] for w, _ in weights[:-2]], dtype=np.int64)
        self.link = NOISE_LINK_CODES[noise_link]
        self.x_mean, self.x_scale = x_mean, x_scale
        self.y_mean, self.y_scale = y_mean, y_scale
        self.units = network_units([w.shape[2] for w, _ in weights[:-2]],
                                   self.covariates)
        # A copy bound to one normalised condition (`at_condition`) answers every strain there.
        self.condition: np.ndarray | None = None

    def at_condition(self, condition: np.ndarray) -> Kernel:
        """This kernel with every strain at one normalised condition (k values): the same
        arithmetic as when the strains each bring it, so the answer is the same bits."""
        bound = copy.copy(self)
        bound.condition = np.asarray(condition, dtype=np.float64).reshape(self.covariates)
        return bound

    def statistics(self, strain: np.ndarray, tangent: bool = False,
                   covariates: np.ndarray | None = None) -> np.ndarray:
        """Raw float64 accumulators (_N_ACC, n) for strains in physical units; a model
        with covariates needs each strain's normalised condition, `covariates` (n, k)."""
        x = ((strain - self.x_mean) / self.x_scale).astype(np.float32)
        if covariates is None and self.condition is not None:
            covariates = np.broadcast_to(self.condition, (x.size, self.covariates))
        if (0 if covariates is None else covariates.shape[1]) != self.covariates:
            raise ValueError(f"the kernel takes {self.covariates} covariates per strain")
        cov = None if covariates is None else np.ascontiguousarray(covariates.T,
                                                                    dtype=np.float32)
        acc = np.empty((_N_ACC, x.size), np.float64)
        if x.size < PARALLEL_FROM:
            _serial(x, cov, self.params, self.params_t, self.cov_w, self.cov_t,
                    self.mean_bias, self.sizes, self.link, tangent, BLOCK, acc)
            return acc
        # Launches of about launches.LAUNCH_NS each, taking turns with other requests'.
        ns_per_strain = self.draws * self.units * SUMMARY_NS_PER_UNIT * (
            TANGENT_FACTOR if tangent else 1.0)
        step = launches.strains_per_launch(ns_per_strain, PARALLEL_FROM)
        for start in range(0, x.size, step):
            interrupt.checkpoint()
            part = x[start:start + step]
            part_cov = None if cov is None else np.ascontiguousarray(
                cov[:, start:start + step])
            piece = acc if part.size == x.size else np.empty((_N_ACC, part.size))
            if part.size < PARALLEL_FROM:
                _serial(part, part_cov, self.params, self.params_t, self.cov_w, self.cov_t,
                        self.mean_bias, self.sizes, self.link, tangent, BLOCK, piece)
            else:
                with launches.parallel_lock:
                    _parallel(part, part_cov, self.params, self.cov_w, self.mean_bias,
                              self.sizes, self.link, tangent, BLOCK, piece)
            if piece is not acc:
                acc[:, start:start + part.size] = piece
        return acc

    def summaries(self, strain: np.ndarray, tangent: bool = False,
                  covariates: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """mean, aleatoric_sd, epistemic_sd (and tangent, tangent_epistemic_sd) in physical
        units (the formulas in service/inference/posterior.py and docs/architecture.md);
        `covariates` as in `statistics`."""
        acc = self.statistics(np.asarray(strain, dtype=np.float64), tangent, covariates)
        n = float(self.draws)
        s1 = acc[_S1] / n
        out = {
            "mean": self.y_mean + self.y_scale * (acc[_SHIFT] + s1),
            "aleatoric_sd": self.y_scale * np.sqrt(acc[_SIGMA2] / n),
            "epistemic_sd": self.y_scale * np.sqrt(np.maximum(acc[_S2] / n - s1 * s1, 0.0)),
        }
        if tangent:
            t1 = acc[_T1] / n
            slope = self.y_scale / self.x_scale
            out["tangent"] = slope * (acc[_TSHIFT] + t1)
            out["tangent_epistemic_sd"] = slope * np.sqrt(
                np.maximum(acc[_T2] / n - t1 * t1, 0.0))
        return out


def supports(hidden_sizes: Sequence[int], activation: str, noise_link: str,
             input_dim: int = 1) -> bool:
    """Whether the kernel computes this architecture (else callers use the reference)."""
    return (activation == "tanh" and noise_link in NOISE_LINK_CODES and input_dim >= 1
            and len(hidden_sizes) >= 1 and all(int(h) > 0 for h in hidden_sizes))


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every variant and start the thread pool."""
    import warnings

    rng = np.random.default_rng(0)
    for sizes in ((3,), (3, 2), (2, 3, 2)):
        shapes, fan_in, weights = [], 1, []
        for width in sizes:
            shapes.append((fan_in, width))
            fan_in = width
        shapes += [(fan_in, 1), (fan_in, 1)]
        for fan_in, fan_out in shapes:
            weights.append((rng.normal(size=(4, fan_in, fan_out)), rng.normal(size=(4, fan_out))))
        # The same network with two covariates: each strain at its own condition.
        w_first, b_first = weights[0]
        with_covariates = [(np.concatenate([w_first, rng.normal(size=(4, 2, sizes[0]))], 1),
                            b_first), *weights[1:]]
        for link in NOISE_LINK_CODES:
            kernel = Kernel(weights, link, 0.0, 1.0, 0.0, 1.0)
            conditioned = Kernel(with_covariates, link, 0.0, 1.0, 0.0, 1.0)
            for n in (1, _DRAW_LANES_BELOW, PARALLEL_FROM):
                for tangent in (False, True):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", NumbaWarning)
                        kernel.summaries(np.linspace(-1.0, 1.0, n), tangent)
                        conditioned.summaries(np.linspace(-1.0, 1.0, n), tangent,
                                              rng.normal(size=(n, 2)))


warm_up()
