"""telesynth: an offline workbench that turns telecom knowledge into fine-tuning data."""

__version__ = "0.1.0"
