# The demo's pretraining (tools/run_demo.py): the ResNet-18 CPU recipe, 4
# epochs, with the object-crop kNN probe on the demo's labeled crops at the
# start (random init of this run) and after every 2nd and the last epoch.
# The parent stays probe-free: the tests train it on folders without labels.
_base_ = ['./vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py']

train_cfg = dict(max_epochs=4)
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='ObjectCropKNNHook',
        interval=2,
        eval_at_start=True,
        data_root='data/demo/labeled/',
        crop_size=_base_.crop,
        max_train_per_class=None,  # 763 training / 241 validation crops
        max_val_per_class=None,
        batch_size=256),
]
