from .collapse_monitor_hook import CollapseMonitorHook

__all__ = ['CollapseMonitorHook']
