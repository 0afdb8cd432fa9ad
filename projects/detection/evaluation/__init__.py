from .metrics import CompetitionCocoMetric, format_summary, write_results

__all__ = ['CompetitionCocoMetric', 'format_summary', 'write_results']
