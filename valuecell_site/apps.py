"""The site itself as an app, so that its system checks are registered (`checks`)."""

from django.apps import AppConfig

from valuecell_site import checks  # noqa: F401  (registers the checks)


class SiteConfig(AppConfig):
    name = "valuecell_site"
    verbose_name = "Site"
