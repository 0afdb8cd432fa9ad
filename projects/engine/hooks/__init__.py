from .preemption_hook import PreemptionHook

__all__ = ['PreemptionHook']
