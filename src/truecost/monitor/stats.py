"""The statistics behind the detectors, as pure functions over numpy arrays (no I/O, no state)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
# Above this many resampled values the reference-mean bootstrap is drawn from its normal limit instead.
_BOOTSTRAP_CELLS = 4_000_000


def squared_distances(a: Array, b: Array) -> Array:
    """Pairwise squared Euclidean distances between the rows of `a` and `b`."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def median_bandwidth(x: Array) -> float:
    """The median heuristic for an RBF kernel: the median pairwise distance (Gretton et al. 2012)."""
    d2 = squared_distances(x, x)
    upper = d2[np.triu_indices(len(x), k=1)]
    med = float(np.sqrt(np.median(upper))) if len(upper) else 1.0
    return med if med > 0 else 1.0


def mmd_permutation_test(x: Array, y: Array, bandwidth: float, permutations: int,
                         rng: np.random.Generator) -> tuple[float, float]:
    """Biased MMD^2 between samples `x` and `y` with an RBF kernel, and its permutation p-value.

    All permutations are scored in one matrix product (`diag(A' K A)` with A the signed weight vectors), and
    the p-value comes from a gamma fitted to the permutation statistics (moments), which reaches the small
    p-values a Bonferroni over many windows needs without thousands of permutations.
    """
    from scipy import stats

    n, m = len(x), len(y)
    z = np.vstack([x, y])
    kernel = np.exp(-squared_distances(z, z) / (2.0 * bandwidth**2))
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(weights @ kernel @ weights)
    order = np.argsort(rng.random((permutations, n + m)), axis=1)
    shuffled = weights[order].T  # (n+m, permutations)
    null = np.einsum("ij,ij->j", shuffled, kernel @ shuffled)
    mean, var = float(null.mean()), float(null.var(ddof=1))
    if mean <= 0 or var <= 0:
        return observed, 1.0
    p_gamma = float(stats.gamma.sf(observed, mean**2 / var, scale=var / mean))
    p_empirical = float((1 + (null >= observed).sum()) / (permutations + 1))
    # In the bulk the empirical value is exact; beyond the permutations' reach only the fitted tail can speak.
    p_value = p_empirical if p_empirical > 10.0 / permutations else min(p_gamma, p_empirical)
    return max(observed, 0.0), p_value


def mmd_spectral_null(x: Array, bandwidth: float, rng: np.random.Generator, draws: int = 50_000,
                      components: int = 64) -> Array:
    """Draws of the large-sample null of (n m / (n + m)) MMD^2_b: sum_l lambda_l z_l^2 (Gretton et al. 2009).

    The lambda_l are the eigenvalues of the centred reference Gram matrix over n. Unlike a moment-matched gamma,
    this keeps the heavy tail that one dominant eigenvalue (e.g. a reference mixing two topics) gives the null.
    """
    n = len(x)
    kernel = np.exp(-squared_distances(x, x) / (2.0 * bandwidth**2))
    centred = kernel - kernel.mean(0) - kernel.mean(1)[:, None] + kernel.mean()
    eigen = np.clip(np.linalg.eigvalsh(centred)[::-1] / n, 0.0, None)
    top, rest = eigen[:components], float(eigen[components:].sum())  # the small rest adds its mean
    normal = rng.standard_normal((draws, len(top)), dtype=np.float32)
    return np.sort((normal * normal) @ top.astype(np.float32) + rest).astype(np.float64)


def spectral_p_value(mmd2: float, n: int, m: int, null: Array) -> float:
    """Right-tail p-value of a biased MMD^2 between samples of sizes n and m against `mmd_spectral_null` draws."""
    scaled = mmd2 * n * m / (n + m)
    above = len(null) - int(np.searchsorted(null, scaled, side="left"))
    return (1 + above) / (len(null) + 1)


def cusum_path(values: Array, target: float, slack: float, start: float = 0.0) -> Array:
    """One-sided lower CUSUM: S_t = max(0, S_{t-1} + target - x_t - slack); large S means the mean fell."""
    path = np.empty(len(values))
    level = start
    for i, value in enumerate(values):
        level = max(0.0, level + target - float(value) - slack)
        path[i] = level
    return path


def calibrate_cusum_threshold(reference: Array, horizon: int, slack: float, alpha: float,
                              rng: np.random.Generator, simulations: int = 2000) -> float:
    """The CUSUM threshold h with P(any alarm within `horizon` steps | no drift) = `alpha`.

    Each simulated run re-estimates the target from a bootstrap of the reference (so the reference's own
    sampling error is in the false-alarm rate) and draws the stream from the reference itself.
    """
    reference = np.asarray(reference, dtype=float)
    size = len(reference)
    if simulations * size <= _BOOTSTRAP_CELLS:
        targets = rng.choice(reference, (simulations, size)).mean(1)
    else:
        # A bootstrap mean of this many values is normal to within far less than the CUSUM's own noise (CLT);
        # drawing the resamples themselves would take simulations x size memory (16 GB for a 1M-row reference).
        targets = rng.normal(reference.mean(), reference.std() / np.sqrt(size), simulations)
    level = np.zeros(simulations)
    peak = np.zeros(simulations)
    for _ in range(max(1, horizon)):
        draws = reference[rng.integers(0, size, simulations)]
        level = np.maximum(0.0, level + targets - draws - slack)
        np.maximum(peak, level, out=peak)
    return float(max(np.quantile(peak, 1.0 - alpha), 1e-9))


def psi(reference: Array, current: Array, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, on the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    ref_share = np.histogram(reference, edges)[0] / max(len(reference), 1)
    cur_share = np.histogram(current, edges)[0] / max(len(current), 1)
    ref_share, cur_share = np.clip(ref_share, 1e-4, None), np.clip(cur_share, 1e-4, None)
    return float(((cur_share - ref_share) * np.log(cur_share / ref_share)).sum())


def ks_p_value(reference: Array, current: Array) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (1.0 when either side is empty or constant alike)."""
    from scipy import stats

    if len(reference) < 2 or len(current) < 2:
        return 1.0
    return float(stats.ks_2samp(reference, current).pvalue)


def categories_p_value(reference: list[str], current: list[str]) -> float:
    """Chi-square p-value that `current` has the same category shares as `reference`."""
    from scipy import stats

    labels = sorted(set(reference) | set(current))
    if len(labels) < 2:
        return 1.0
    table = np.array([[reference.count(c) for c in labels], [current.count(c) for c in labels]])
    return float(stats.chi2_contingency(table).pvalue)


def exceedance_p_value(reference: Array, current: Array, quantile: float = 0.95) -> tuple[float, float]:
    """(reference quantile, one-sided Fisher p-value) that `current` exceeds it more often than the reference.

    Comparing exceedance counts of both samples keeps the reference quantile's own noise in the test.
    """
    from scipy import stats

    cut = float(np.quantile(reference, quantile))
    ref_over, cur_over = int((reference > cut).sum()), int((current > cut).sum())
    table = [[cur_over, len(current) - cur_over], [ref_over, len(reference) - ref_over]]
    return cut, float(stats.fisher_exact(table, alternative="greater")[1])


def mean_shift_p_value(reference: Array, current: Array) -> float:
    """One-sided Mann-Whitney p-value that `current` tends to be larger than `reference`."""
    from scipy import stats

    if len(reference) < 2 or len(current) < 2 or np.ptp(np.concatenate([reference, current])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(current, reference, alternative="greater").pvalue)
