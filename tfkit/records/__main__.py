"""``python -m tfkit.records write|inspect|verify``: see tfkit.records.command."""

from tfkit import cli
from tfkit.records.command import main

if __name__ == "__main__":
    cli.run(main)
