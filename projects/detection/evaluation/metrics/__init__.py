from .competition_coco_metric import (STAT_NAMES, CompetitionCocoMetric,
                                      format_summary, write_results)

__all__ = [
    'STAT_NAMES', 'CompetitionCocoMetric', 'format_summary', 'write_results'
]
