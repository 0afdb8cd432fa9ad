# The original team's lr up to epoch 40: 1000-iteration linear warm-up, then
# StepLR(10, 0.2) for epochs 0-39 (0.005 / 1e-3 / 2e-4 / 4e-5), back to the
# command-line lr 0.005 at epoch 40 (they resumed with it). mmengine has no
# scheduler that sets an lr and schedulers chain multiplicatively: three
# ConstantLR(0.2) starting at 10, 20 and 30 and ending together give the
# decays and the return (ConstantLR restores the lr at epoch end - 1, hence
# end=41). tests/projects/detection/test_det_recipes.py traces it. Children
# list it in their param_scheduler (with what follows epoch 40).
original_lr_to_40e = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(type='ConstantLR', factor=0.2, by_epoch=True, begin=10, end=41),
    dict(type='ConstantLR', factor=0.2, by_epoch=True, begin=20, end=41),
    dict(type='ConstantLR', factor=0.2, by_epoch=True, begin=30, end=41)
]
