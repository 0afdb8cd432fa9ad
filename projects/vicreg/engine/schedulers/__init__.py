from .closed_form_lr import ClosedFormCosineAnnealingLR, ClosedFormLinearLR

__all__ = ['ClosedFormLinearLR', 'ClosedFormCosineAnnealingLR']
