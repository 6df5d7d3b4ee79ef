"""`python manage.py purge_conversations --older-than DAYS [--dry-run]`: retention
(the rules are in `conversations.retention`)."""

from argparse import ArgumentTypeError
from datetime import timedelta

from django.core.management.base import BaseCommand

from conversations.retention import count_stale, purge_stale


def days(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ArgumentTypeError(f"a number of days, not {raw!r}") from None
    if not value >= 0:
        raise ArgumentTypeError(f"0 or more days, not {raw!r}")
    return value


class Command(BaseCommand):
    help = (
        "Delete conversations whose last event (or creation) is older than DAYS days and that have "
        "no run in progress, with their threads, tasks, events and items."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=days, required=True, metavar="DAYS", help="Age in days (may be 0.5).")
        parser.add_argument("--dry-run", action="store_true", help="Only print how many would be deleted.")

    def handle(self, *args, older_than: float, dry_run: bool, **options):
        age = timedelta(days=older_than)
        if dry_run:
            self.stdout.write(f"{count_stale(age)} conversations would be deleted (older than {older_than:g} days).")
            return
        self.stdout.write(f"{purge_stale(age)} conversations deleted (older than {older_than:g} days).")
