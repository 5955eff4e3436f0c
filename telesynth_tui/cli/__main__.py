"""`python -m telesynth_tui.cli`."""

from telesynth_tui.cli import main

if __name__ == "__main__":
    main()
