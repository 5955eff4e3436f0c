"""telesynth: an offline workbench that turns telecom knowledge into fine-tuning data."""

__version__ = "0.1.0"

from telesynth_tui import offline as _offline

_offline.apply()
