"""``main_vicreg.py`` ``adjust_learning_rate``."""
import math


def official_lr(step: int, base_lr: float, batch_size: int, epochs: int,
                iters_per_epoch: int) -> float:
    """Learning rate of iteration ``step``: linear warm-up over 10 epochs from
    0 to ``base_lr * batch_size / 256``, then cosine to 1/1000 of it."""
    max_steps = epochs * iters_per_epoch
    warmup_steps = 10 * iters_per_epoch
    base_lr = base_lr * batch_size / 256
    if step < warmup_steps:
        lr = base_lr * step / warmup_steps
    else:
        step -= warmup_steps
        max_steps -= warmup_steps
        q = 0.5 * (1 + math.cos(math.pi * step / max_steps))
        end_lr = base_lr * 0.001
        lr = base_lr * q + end_lr * (1 - q)
    return lr
