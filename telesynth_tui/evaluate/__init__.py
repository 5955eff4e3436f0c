"""Student evaluation: benchmark readers, answer parsing and metrics."""
