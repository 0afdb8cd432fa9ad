from .full_gather import FullGatherLayer, batch_all_gather

__all__ = ['FullGatherLayer', 'batch_all_gather']
