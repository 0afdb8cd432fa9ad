"""Object-crop kNN probe: formula, crops, 2 processes, hook == knn_eval.py."""
import glob
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from process_helpers import ROOT

from projects.compat import safe_torch_load
from projects.vicreg.evaluation import (ObjectCropKNN, ObjectCrops,
                                        knn_accuracy, weighted_knn_scores)

KNN_DEMO = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512-knn_1xb32-coslr-4e_demo.py')


# ---------------------------------------------------------------- formula
def _reference(train, labels, queries, qlabels, num_classes, k, T):
    """Wu et al. 2018 / DINO weighted kNN, written out with Python loops."""
    top1 = top5 = 0
    per_class = {}
    all_votes = []
    for q, y in zip(queries.tolist(), qlabels.tolist()):
        sims = []
        for i, t in enumerate(train.tolist()):
            dot = sum(a * b for a, b in zip(q, t))
            norm = math.sqrt(sum(a * a for a in q)) * math.sqrt(
                sum(b * b for b in t))
            sims.append((dot / norm, i))
        sims.sort(reverse=True)
        votes = [0.0] * num_classes
        for s, i in sims[:k]:
            votes[labels[i]] += math.exp(s / T)
        all_votes.append(votes)
        better = sum(v > votes[y] for v in votes)
        hit1 = votes[y] > 0 and better < 1
        top1 += hit1
        top5 += votes[y] > 0 and better < 5
        per_class.setdefault(y, []).append(hit1)
    n = len(qlabels)
    mean_class = sum(sum(v) / len(v) for v in per_class.values()) / len(
        per_class)
    return (dict(top1=100 * top1 / n, top5=100 * top5 / n,
                 mean_class=100 * mean_class), torch.tensor(all_votes))


def _clustered(n, centres, gen, noise):
    num_classes, dim = centres.shape
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    feats = centres[labels] + noise * torch.randn(n, dim, generator=gen)
    return torch.nn.functional.normalize(feats, dim=1), labels


@pytest.mark.parametrize('k,T', [(20, 0.07), (5, 0.5)])
def test_weighted_knn_matches_the_formula(k, T):
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 16, generator=gen)
    train, labels = _clustered(80, centres, gen, noise=2.0)
    queries, qlabels = _clustered(40, centres, gen, noise=2.0)
    ref, ref_votes = _reference(train, labels, queries, qlabels, 10, k, T)
    scores = weighted_knn_scores(train, labels, queries, 10, k, T, chunk=7)
    # float32 similarities, exp(s / 0.07) up to 1.6e6: relative tolerance
    torch.testing.assert_close(scores, ref_votes.double(), rtol=1e-5,
                               atol=1e-6)
    assert knn_accuracy(scores, qlabels) == pytest.approx(ref, abs=1e-9)
    # the noise keeps it a real test: neither perfect nor top-5 == top-1
    assert 0 < ref['top1'] < ref['top5'] < 100
    # negative controls: another T or k changes the votes; shifted labels
    # change the accuracies
    assert not torch.allclose(
        weighted_knn_scores(train, labels, queries, 10, k, T * 3), scores)
    assert not torch.allclose(
        weighted_knn_scores(train, labels, queries, 10, k + 3, T), scores)
    assert knn_accuracy(scores, (qlabels + 1) % 10) != pytest.approx(ref)


def test_knn_accuracy_ties_and_unvoted_classes():
    # query 0: class 1 and 2 tie for first -> counted right for either;
    # query 1: its class got no vote -> wrong even at top-5
    scores = torch.tensor([[0.0, 2.0, 2.0, 0.0], [3.0, 0.0, 0.0, 0.0]],
                          dtype=torch.float64)
    acc = knn_accuracy(scores, torch.tensor([2, 3]))
    assert acc == dict(top1=50.0, top5=50.0, mean_class=50.0)
    with pytest.raises(ValueError, match='empty'):
        weighted_knn_scores(torch.zeros(0, 4), torch.zeros(0).long(),
                            torch.zeros(2, 4), 3)


# ---------------------------------------------------------------- crops
@pytest.fixture(scope='module')
def labeled(tmp_path_factory):
    """A small labeled split pair in the converter's layout."""
    out = tmp_path_factory.mktemp('demo')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                             'generate_demo_data.py'),
                    '--out', str(out), '--num-unlabeled', '8', '--num-train',
                    '16', '--num-val', '8', '--unlabeled-size', '48',
                    '--quiet'], check=True, capture_output=True)
    for split in ('training', 'validation'):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/yaml_to_coco.py'),
            str(out / 'labeled'), split,
            str(out / 'labeled' / 'annotations' / f'{split}.json')
        ], check=True, capture_output=True)
    return out


def test_crops_margin_cap_and_errors(labeled, tmp_path):
    root = labeled / 'labeled'
    ann = str(root / 'annotations' / 'training.json')
    with open(ann) as f:
        coco = json.load(f)
    crops = ObjectCrops(ann, str(root / 'training' / 'images'), 32, 0.25)
    assert len(crops) == len(coco['annotations'])
    a = min(coco['annotations'], key=lambda a: a['id'])
    im = next(i for i in coco['images'] if i['id'] == a['image_id'])
    x, y, w, h = a['bbox']
    assert crops.boxes[0] == (
        max(0, math.floor(x - w / 4)), max(0, math.floor(y - h / 4)),
        min(im['width'], math.ceil(x + w + w / 4)),
        min(im['height'], math.ceil(y + h + h / 4)))
    pixels = crops.load([0, 1])
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == torch.uint8
    capped = ObjectCrops(ann, str(root / 'training' / 'images'), 32,
                         max_per_class=2, seed=3)
    assert torch.bincount(capped.labels).max() == 2
    assert capped.files == ObjectCrops(
        ann, str(root / 'training' / 'images'), 32, max_per_class=2,
        seed=3).files  # the same draw for the same seed
    with pytest.raises(FileNotFoundError, match='yaml_to_coco'):
        ObjectCrops(str(tmp_path / 'nope.json'), str(tmp_path), 32)
    with pytest.raises(FileNotFoundError, match='img_dir'):
        ObjectCrops(ann, str(tmp_path), 32).load([0])


def _backbone():
    from mmpretrain.models import ResNet
    torch.manual_seed(0)
    backbone = ResNet(depth=18)
    backbone.init_weights()
    return backbone


def _knn(labeled):
    return ObjectCropKNN(str(labeled / 'labeled'), crop_size=32,
                         max_train_per_class=None, max_val_per_class=None,
                         batch_size=8)


def test_evaluate_restores_train_mode_and_caches_crops(labeled):
    knn = _knn(labeled)
    backbone = _backbone()
    backbone.train()
    first = knn.evaluate(backbone)
    assert backbone.training
    pixels = knn._pixels['train']
    assert knn.evaluate(backbone) == first
    assert knn._pixels['train'] is pixels  # decoded once


# ---------------------------------------------------------- 2 processes
def _dist_worker(rank, world_size, init_file, out_dir, labeled):
    import torch.distributed as dist

    from projects.launch import close_distributed
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world_size)
    knn = _knn(labeled)
    backbone = _backbone()
    metrics = knn.evaluate(backbone)
    backbone.eval()  # as evaluate() runs it
    feats = knn._features('train', knn.train, backbone,
                          torch.device('cpu'), None)
    torch.save(dict(metrics=metrics, feats=feats,
                    local=knn._pixels['train'].shape[0]),
               osp.join(out_dir, f'rank{rank}.pt'))
    # a barrier first: destroying the group right after the all-gather can
    # hang (seen on torch 2.1 and 2.4)
    close_distributed(completed=True)


def test_two_processes_match_one_process(labeled, tmp_path):
    torch.set_num_threads(1)
    knn = _knn(labeled)
    backbone = _backbone()
    ref = knn.evaluate(backbone)
    backbone.eval()  # as evaluate() runs it
    ref_feats = knn._features('train', knn.train, backbone,
                              torch.device('cpu'), None)
    mp.spawn(_dist_worker, args=(2, str(tmp_path / 'init'), str(tmp_path),
                                 labeled), nprocs=2, join=True)
    ranks = [safe_torch_load(str(tmp_path / f'rank{r}.pt')) for r in (0, 1)]
    n = len(knn.train)
    assert [r['local'] for r in ranks] == [(n + 1) // 2, n // 2]  # shards
    for out in ranks:
        assert out['metrics'] == ref
        torch.testing.assert_close(out['feats'], ref_feats, rtol=0,
                                   atol=1e-5)
    # negative control: the shards concatenated without interleaving are
    # not in the crop order (the test would see a mis-ordered gather)
    naive = torch.cat([ref_feats[0::2], ref_feats[1::2]])
    assert not torch.allclose(naive, ref_feats, atol=1e-3)


# ------------------------------------------------- hook == knn_eval.py
@pytest.mark.slow
def test_knn_eval_tool_reproduces_the_hook(labeled, tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        f'_base_ = [{KNN_DEMO!r}]\n'
        'train_cfg = dict(max_epochs=2)\n'
        'train_dataloader = dict(batch_size=4, num_workers=0, '
        'persistent_workers=False)\n'
        'custom_hooks = [h if h["type"] != "ObjectCropKNNHook" else '
        f'dict(h, interval=1, data_root={str(labeled / "labeled")!r}) '
        'for h in _base_.custom_hooks]\n')
    work = tmp_path / 'work'
    res = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools/train.py'), str(cfg),
        '--work-dir', str(work), '--seed', '1', '--cfg-options',
        f'train_dataloader.dataset.data_root={labeled / "unlabeled"}',
        f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}'
    ], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (scalars,) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        logged = [r for r in map(json.loads, f) if 'knn/top1' in r]
    assert len(logged) == 3  # start, epoch 1, epoch 2
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
    import knn_eval
    rows = knn_eval.main([str(cfg), ckpt, 'epoch_1_missing.pth'][:2])
    last = logged[-1]
    assert {k: rows[0][k] for k in ('top1', 'top5', 'mean_class')} == {
        k: last[f'knn/{k}'] for k in ('top1', 'top5', 'mean_class')}
    # negative control: the run's first evaluation (initial weights) differs
    # from the trained one, so equality above is not a constant
    assert [logged[0][f'knn/{k}'] for k in ('top1', 'mean_class')] != \
        [last[f'knn/{k}'] for k in ('top1', 'mean_class')]


# ------------------------------------------------------------ knn_eval.py
def test_knn_eval_scores_every_layout_and_names_bad_inputs(labeled,
                                                           tmp_path):
    """Our checkpoint and the same tensors in torchvision layout score the
    same; ``random`` depends on --seed; bad inputs name the file."""
    from det_helpers import fake_vicreg_checkpoint

    from projects.vicreg.converters import mmpretrain_to_torchvision
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
    import knn_eval
    ours = str(tmp_path / 'ours.pth')
    fake_vicreg_checkpoint(ours)
    tv_state, _, _ = mmpretrain_to_torchvision(safe_torch_load(ours))
    tv = str(tmp_path / 'tv.pth')
    torch.save(tv_state, tv)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f'_base_ = [{KNN_DEMO!r}]\n')
    common = [str(cfg), '--data-root', str(labeled / 'labeled'), '--out',
              str(tmp_path / 'knn.json')]
    rows = knn_eval.main(common[:1] + [ours, tv, 'random'] + common[1:])
    keys = ('top1', 'top5', 'mean_class')
    assert [rows[0][k] for k in keys] == [rows[1][k] for k in keys]
    assert json.loads((tmp_path / 'knn.json').read_text())[2]['checkpoint'] \
        == 'random'
    with pytest.raises(SystemExit, match='does not exist'):
        knn_eval.main(common[:1] + [str(tmp_path / 'nope.pth')] + common[1:])
    bare = tmp_path / 'bare.py'
    plain = osp.join(ROOT, 'configs/vicreg/'
                     'vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
    bare.write_text(f'_base_ = [{plain!r}]\n')
    with pytest.raises(SystemExit, match='no ObjectCropKNNHook'):
        knn_eval.main([str(bare), ours])
