"""Build a config's parameter schedulers as mmengine's Runner does, for the
tests that trace learning rates without training."""


def build_schedulers(registry, cfg, optim_wrapper, epochs: int,
                     iters_per_epoch: int) -> list:
    """``cfg.param_scheduler`` on ``optim_wrapper`` (``end`` defaults to
    the last epoch, as in ``Runner``), built from ``registry`` (the
    config's scope: mmdet's or mmpretrain's PARAM_SCHEDULERS)."""
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        s.setdefault('end', epochs)
        schedulers.append(registry.build(
            s, default_args=dict(optimizer=optim_wrapper,
                                 epoch_length=iters_per_epoch)))
    return schedulers
