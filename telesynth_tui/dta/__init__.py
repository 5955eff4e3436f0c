"""Data Trajectory Alignment: teacher ensemble, rewrite into the student's style, selection."""
