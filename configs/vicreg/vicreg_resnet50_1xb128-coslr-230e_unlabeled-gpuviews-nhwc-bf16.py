# -gpuviews plus the two GPU throughput switches (numerics differ from the
# official fp16 AMP recipe, so this is an option, not the reference run):
# - channels-last: NHWC views from the preprocessor and an NHWC model
#   (ChannelsLastHook), cuDNN's native layout for tensor-core convolutions;
# - bf16 autocast instead of fp16 (AmpOptimWrapper dtype; no loss-scale
#   underflow to manage). In VICRegLoss the element-wise terms (variance,
#   sqrt, squares, sums) are fp32 either way, but the covariance matmuls
#   z.T @ z run in bf16 under autocast (fp16 in the fp16 recipe, as the
#   official code). The GPU views are computed outside autocast (fp32).
# Measure before adopting: tools/analysis_tools/bench_vicreg_step.py
# --channels-last --bf16 (docs/performance.md).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled-gpuviews.py']

data_preprocessor = dict(channels_last=True)
optim_wrapper = dict(dtype='bfloat16')
custom_hooks = [*_base_.custom_hooks, dict(type='ChannelsLastHook')]
