"""Building the embedded models and benchmarking the model back ends."""
