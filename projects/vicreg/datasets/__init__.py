from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = ['UnlabeledImageFolder']
