"""monitor: drift in inputs, quality, latency and cost, and whether retraining pays, in dollars.

Stable API: `run_monitor(reference, current, window=50) -> MonitorResult` (`.to_dict()`, `.decision`), the
`Monitor` class for streaming use, and the detectors (`fit(reference, ...)` then `score(window)`).
"""

from truecost.monitor.decision import Decision, Economics, decide, economics_from_config
from truecost.monitor.detectors import Detector, InputDriftDetector, OpsDriftDetector, QualityDriftDetector, Signal
from truecost.monitor.monitor import Monitor, MonitorResult, WindowResult, run_monitor
from truecost.monitor.settings import MonitorSettings, monitor_settings

__all__ = ["Decision", "Detector", "Economics", "InputDriftDetector", "Monitor", "MonitorResult", "MonitorSettings",
           "OpsDriftDetector", "QualityDriftDetector", "Signal", "WindowResult", "decide", "economics_from_config",
           "monitor_settings", "run_monitor"]
