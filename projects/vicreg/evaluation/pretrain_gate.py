"""Did a VICReg pretraining learn? The check the demo prints before it
compares detectors initialised from it.

A run that learned shows it in the criterion and in the representation:

* the variance term :math:`\\mu\\, v(Z)` ends below its first logged
  value (the embeddings spread out instead of shrinking to satisfy
  invariance);
* ``emb_std`` (per-dimension std of the embeddings, VICReg's target 1)
  ends above its lowest point: it recovers rather than keeps falling;
* RankMe (Garrido et al., ICML 2023) over ``min(batch, dim)`` ends at no
  less than ``min_rank_ratio``: no collapse to a few dimensions;
* the object-crop kNN probe beats the random initialisation of the same
  seed by at least ``min_knn_gain`` top-1, significantly (exact McNemar on
  the shared queries, ``p < alpha``).

Each check is reported with its figures; a run failing any of them is
flagged and its downstream comparison is not presented as one.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Sequence

# the training log's keys (LoggerHook / CollapseMonitorHook)
VAR_KEY, STD_KEY, RANK_KEY = 'loss_var', 'emb_std', 'rankme_ratio'


class Check(NamedTuple):
    name: str
    passed: bool
    detail: str


def load_train_records(work_dir: str) -> List[dict]:
    """Training records (those with ``iter``) of every run in an mmengine
    work dir (``<timestamp>/vis_data/scalars.json``), by iteration; a later
    run's record replaces an earlier one at the same iteration (resume)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(
            f'{work_dir}: no <timestamp>/vis_data/scalars.json; is it the '
            f'work dir of a finished tools/train.py run?')
    by_iter = {}
    for path in files:
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed run
                if 'iter' in rec:
                    by_iter[rec['iter']] = rec
    return [by_iter[k] for k in sorted(by_iter)]


def _series(records: Sequence[dict], key: str) -> List[float]:
    return [float(r[key]) for r in records if key in r]


def check_pretraining(records: Sequence[dict], knn_gain: float,
                      knn_p: float, min_knn_gain: float = 0.05,
                      min_rank_ratio: float = 0.05,
                      alpha: float = 0.05) -> List[Check]:
    """The checks above, on a run's training ``records`` and its kNN probe
    against random init (``knn_gain``: top-1 difference as a fraction,
    ``knn_p``: McNemar p-value)."""
    checks = []
    var = _series(records, VAR_KEY)
    if len(var) < 2:
        checks.append(Check('variance term', False,
                            f'{len(var)} logged values of {VAR_KEY}'))
    else:
        checks.append(Check(
            'variance term', var[-1] < var[0],
            f'{var[0]:.2f} -> {var[-1]:.2f} (must end lower)'))
    std = _series(records, STD_KEY)
    if len(std) < 2:
        checks.append(Check('emb_std', False,
                            f'{len(std)} logged values of {STD_KEY}'))
    else:
        low = min(std)
        checks.append(Check(
            'emb_std', std[-1] > low,
            f'{std[0]:.3f} -> min {low:.3f} -> {std[-1]:.3f} (must end '
            f'above its minimum)'))
    rank = _series(records, RANK_KEY)
    if not rank:
        checks.append(Check('RankMe', False, f'no {RANK_KEY} logged'))
    else:
        checks.append(Check(
            'RankMe', rank[-1] >= min_rank_ratio,
            f'{rank[0]:.2f} -> {rank[-1]:.2f} of min(batch, dim) (must '
            f'end >= {min_rank_ratio:.2f})'))
    checks.append(Check(
        'kNN vs random init', knn_gain >= min_knn_gain and knn_p < alpha,
        f'top-1 {knn_gain:+.3f}, McNemar p={knn_p:.2g} (must be >= '
        f'{min_knn_gain:+.2f} with p < {alpha})'))
    return checks


def summarize(checks: Sequence[Check]) -> Dict[str, object]:
    """``learned`` (every check passed) and the checks as dicts."""
    return dict(learned=all(c.passed for c in checks),
                checks=[c._asdict() for c in checks])
