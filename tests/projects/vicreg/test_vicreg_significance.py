"""The demo's paired tests against scipy's, and the pretraining gate with
its negative control (a run that did not learn is flagged)."""
import json
import os

import numpy as np
import pytest
from scipy import stats

from projects.vicreg.evaluation.pretrain_gate import (check_pretraining,
                                                      load_train_records,
                                                      summarize)
from projects.vicreg.evaluation.significance import mcnemar, paired_t


@pytest.mark.parametrize('a_only,b_only,both,neither',
                         [(30, 10, 50, 10), (3, 4, 90, 3), (0, 9, 1, 0),
                          (0, 0, 5, 5)])
def test_mcnemar_is_the_exact_binomial_test(a_only, b_only, both, neither):
    a = [1] * a_only + [0] * b_only + [1] * both + [0] * neither
    b = [0] * a_only + [1] * b_only + [1] * both + [0] * neither
    out = mcnemar([bool(x) for x in a], [bool(x) for x in b])
    n = a_only + b_only
    want = stats.binomtest(a_only, n, 0.5).pvalue if n else 1.0
    assert out['p'] == pytest.approx(want, rel=1e-9)
    assert out['diff'] == pytest.approx((a_only - b_only) / len(a))


def test_mcnemar_refuses_unpaired_queries():
    with pytest.raises(ValueError, match='same, non-empty'):
        mcnemar([True, False], [True])


def test_paired_t_is_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 5), rng.normal(0.5, 1, 5)
    out = paired_t(list(a), list(b))
    want = stats.ttest_rel(a, b)
    assert out['t'] == pytest.approx(want.statistic)
    assert out['p'] == pytest.approx(want.pvalue)
    assert np.isnan(paired_t([1.0], [0.0])['p'])  # one seed: no test


def _records(var, std, rank, every=25):
    return [dict(iter=(i + 1) * every, loss_var=v, emb_std=s,
                 rankme_ratio=r)
            for i, (v, s, r) in enumerate(zip(var, std, rank))]


LEARNED = _records(var=[18.9, 19.1, 18.5, 18.2, 17.9],
                   std=[0.25, 0.23, 0.26, 0.28, 0.29],
                   rank=[0.6, 0.3, 0.2, 0.16, 0.15])
# a run that did not learn: variance term up, std and RankMe falling to a
# collapse
FLAT = _records(var=[16.5, 18.3, 18.9, 19.5, 20.3],
                std=[0.34, 0.27, 0.25, 0.22, 0.18],
                rank=[0.7, 0.2, 0.06, 0.03, 0.01])


def test_gate_passes_a_run_that_learned():
    checks = check_pretraining(LEARNED, knn_gain=0.2, knn_p=1e-6)
    assert summarize(checks)['learned'], checks


def test_gate_flags_a_run_that_did_not_learn():
    checks = check_pretraining(FLAT, knn_gain=0.02, knn_p=0.4)
    out = summarize(checks)
    assert not out['learned']
    failed = {c['name'] for c in out['checks'] if not c['passed']}
    assert failed == {'variance term', 'emb_std', 'RankMe',
                      'kNN vs random init'}


def test_gate_flags_an_insignificant_knn_gain():
    checks = check_pretraining(LEARNED, knn_gain=0.2, knn_p=0.2)
    assert not summarize(checks)['learned']


def test_gate_reads_the_work_dir_and_flags_missing_logs(tmp_path):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for rec in LEARNED:
            f.write(json.dumps(rec) + '\n')
        f.write('{"iter": 999, "loss_v')  # a line cut short by a kill
    assert load_train_records(str(tmp_path)) == LEARNED
    checks = check_pretraining([], knn_gain=0.3, knn_p=0.0)
    assert not summarize(checks)['learned']
    os.remove(run / 'scalars.json')
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        load_train_records(str(tmp_path))
