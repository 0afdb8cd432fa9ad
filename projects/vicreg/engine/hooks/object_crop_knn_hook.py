from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmpretrain.registry import HOOKS

from ...evaluation import ObjectCropKNN, autocast_dtype


@HOOKS.register_module()
class ObjectCropKNNHook(Hook):
    """Weighted-kNN probe of the backbone on labeled object crops.

    Watches representation quality while SSL pretraining runs, as
    solo-learn's and lightly's kNN callbacks do (weighted kNN of Wu et al.,
    CVPR 2018, with DINO's k=20, T=0.07), on the crops of the detection
    data the backbone is meant for (:class:`ObjectCropKNN`). Every
    ``interval`` epochs and after the last one it logs ``knn/top1``,
    ``knn/top5`` and ``knn/mean_class`` (percent) through the runner's
    logger and visualizer (``scalars.json``, step = iteration). The
    backbone runs frozen in eval mode, under autocast when the run uses
    ``AmpOptimWrapper``. Crop lists are read before training starts (a bad
    path fails then), decoded crops are cached on the first evaluation.

    Args:
        interval (int): evaluate every ``interval`` epochs. Defaults to 1.
        eval_at_start (bool): also evaluate the initial weights.
        **knn_cfg: arguments of :class:`ObjectCropKNN` (``data_root``,
            ``crop_size``, caps, ``margin``, ``k``, ...).
    """

    priority = 'NORMAL'  # before CheckpointHook: the saved weights are these

    def __init__(self, interval: int = 1, eval_at_start: bool = False,
                 **knn_cfg) -> None:
        if interval < 1:
            raise ValueError(f'ObjectCropKNNHook: interval must be >= 1, '
                             f'got {interval}')
        self.interval = interval
        self.eval_at_start = eval_at_start
        self.knn_cfg = knn_cfg
        self.knn: Optional[ObjectCropKNN] = None
        self.history = []  # (epoch, metrics), for tools and tests

    def before_train(self, runner) -> None:
        if self.knn is None:
            self.knn = ObjectCropKNN(**self.knn_cfg)
            print_log(
                f'kNN probe: {len(self.knn.train)} training / '
                f'{len(self.knn.val)} validation object crops, '
                f'{self.knn.train.num_classes} classes, every '
                f'{self.interval} epoch(s)', logger='current')
        if self.eval_at_start and runner.epoch == 0:
            self._evaluate(runner, epoch=0)

    def after_train_epoch(self, runner) -> None:
        if self.every_n_epochs(runner, self.interval) or \
                self.is_last_train_epoch(runner):
            self._evaluate(runner, epoch=runner.epoch + 1)  # epoch just run

    def _evaluate(self, runner, epoch: int) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        wrapper = getattr(runner, 'optim_wrapper', None)
        amp_dtype = autocast_dtype(
            isinstance(wrapper, AmpOptimWrapper),
            next(model.parameters()).device,
            getattr(wrapper, 'cast_dtype', None))
        metrics = self.knn.evaluate(model.backbone, amp_dtype)
        self.history.append((epoch, metrics))
        scalars = {f'knn/{key}': value for key, value in metrics.items()}
        runner.visualizer.add_scalars(dict(scalars, epoch=epoch),
                                      step=runner.iter)
        t = self.knn.timing
        seconds = sum(v for k, v in t.items() if k.endswith('_s'))
        decode = t['train_decode_s'] + t['val_decode_s']
        embed = t['train_embed_s'] + t['val_embed_s']
        print_log(
            f'kNN probe, epoch {epoch}: top1 {metrics["top1"]:.2f} '
            f'top5 {metrics["top5"]:.2f} mean_class '
            f'{metrics["mean_class"]:.2f} ({t["crops"]} crops, '
            f'{seconds:.1f} s: decode {decode:.1f} s, embed {embed:.1f} s, '
            f'kNN {t["knn_s"]:.1f} s)', logger='current')
