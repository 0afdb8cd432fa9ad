from .competition import (CATEGORIES, CLASSES, ConversionError, convert_split,
                          convert_to_file)

__all__ = [
    'CATEGORIES', 'CLASSES', 'ConversionError', 'convert_split',
    'convert_to_file'
]
