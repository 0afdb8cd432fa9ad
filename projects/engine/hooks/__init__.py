from .channels_last_hook import ChannelsLastHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = ['ChannelsLastHook', 'NonFiniteLossError', 'NonFiniteLossHook']
