"""`python -m telesynth_tui.cli`."""

from telesynth_tui.cli import main

main()
