from .fast_views import FastColorJitter, FastGaussianBlur, FastRandomGrayscale

__all__ = ['FastColorJitter', 'FastGaussianBlur', 'FastRandomGrayscale']
