"""``python -m tracker``: the same entry point as the installed ``tracker`` command."""

from tracker.entry import main

main()
