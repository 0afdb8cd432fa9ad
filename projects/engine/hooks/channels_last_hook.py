"""Channels-last (NHWC) model for cuDNN's tensor-core convolutions."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model to channels-last (NHWC) memory format before
    training, for cuDNN's NHWC kernels under AMP (pair it with
    ``VICRegGPUViewsPreprocessor(channels_last=True)`` so inputs match).

    Under DDP the conversion happens after wrapping: the gradient buckets
    were laid out for the NCHW parameters, so DDP copies gradients into them
    (correct, slightly slower); single-process runs are unaffected.
    """
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model
        module = getattr(model, 'module', model)
        module.to(memory_format=torch.channels_last)
