"""Django's security deploy checks, run through this site's middleware.

valuecell_site/middleware.py subclasses Django's security, CSRF and
clickjacking middleware (to skip thread hops). Django's deploy checks look
for those by dotted path: they reported them missing (security.W001-W003,
silenced in settings as false alarms) and skipped every check that depends on
them, HSTS and the SSL redirect among them. Here those checks run as Django
would run them with its own classes in MIDDLEWARE; a middleware missing
altogether is reported under this site's own ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.checks.security import base, csrf
from django.utils.module_loading import import_string

Check = Callable[..., Sequence[CheckMessage]]

# Django's middleware (by dotted path) -> (the id when it is missing, its deploy checks that run only when it is listed).
DEPENDENT_CHECKS: dict[str, tuple[str, list[Check]]] = {
    "django.middleware.security.SecurityMiddleware": (
        "valuecell_site.W001",
        [
            base.check_sts,
            base.check_sts_include_subdomains,
            base.check_sts_preload,
            base.check_content_type_nosniff,
            base.check_ssl_redirect,
            base.check_referrer_policy,
            base.check_cross_origin_opener_policy,
        ],
    ),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": ("valuecell_site.W002", [base.check_xframe_deny]),
    "django.middleware.csrf.CsrfViewMiddleware": ("valuecell_site.W003", [csrf.check_csrf_cookie_secure]),
}


@contextmanager
def _middleware_listed_as(paths: list[str]) -> Iterator[None]:
    # Django's checks read settings.MIDDLEWARE; checks run before anything is served.
    listed = settings.MIDDLEWARE
    settings.MIDDLEWARE = paths
    try:
        yield
    finally:
        settings.MIDDLEWARE = listed


def _extends(path: str, django_class: type) -> bool:
    middleware = import_string(path)
    return isinstance(middleware, type) and issubclass(middleware, django_class)


@register(Tags.security, deploy=True)
def check_security_through_subclassed_middleware(app_configs, **kwargs) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    as_django = list(settings.MIDDLEWARE)
    checks: list[Check] = []
    for django_path, (missing_id, dependent) in DEPENDENT_CHECKS.items():
        if django_path in settings.MIDDLEWARE:
            continue  # Django checks it itself
        if not any(_extends(path, import_string(django_path)) for path in settings.MIDDLEWARE):
            messages.append(CheckWarning(f"No middleware in MIDDLEWARE is or extends {django_path}.", id=missing_id))
            continue
        as_django.append(django_path)
        checks.extend(dependent)
    with _middleware_listed_as(as_django):
        for check in checks:
            messages.extend(check(app_configs))
    return messages
