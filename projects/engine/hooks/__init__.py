from .channels_last_hook import ChannelsLastHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .preemption_hook import PreemptionHook

__all__ = [
    'ChannelsLastHook', 'NonFiniteLossError', 'NonFiniteLossHook',
    'PreemptionHook'
]
