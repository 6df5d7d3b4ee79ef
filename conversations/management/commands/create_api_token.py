"""`python manage.py create_api_token USERNAME [--name NAME]`: the token is the last line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conversations.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME (creating the user if needed); prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label for the token.")

    def handle(self, *args, username: str, name: str, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {username!r}.")
        raw, token = create_token(user, name)
        self.stderr.write(f"Token {token.prefix}… for {username!r}; it is shown only once:")
        self.stdout.write(raw)
