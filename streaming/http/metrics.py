"""`GET /metrics`: this worker's Prometheus metrics (`streaming.metrics`), for
the addresses in VALUECELL_METRICS_ALLOW only (403 for anyone else).

A request that came through a proxy we do not trust (it carries
`X-Forwarded-For`) is refused: behind a proxy on the same host every visitor
would otherwise look like loopback. Scrape each worker directly.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from streaming.addresses import came_through_untrusted_proxy, is_in, networks
from streaming.errors import ErrorCode, ServiceError
from streaming.http.api import error_response, require_method
from streaming.http.auth import request_client


def allowed(request: HttpRequest) -> bool:
    peer, forwarded = request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR")
    if came_through_untrusted_proxy(peer, forwarded):
        return False
    return is_in(request_client(request), networks(tuple(settings.VALUECELL_METRICS_ALLOW)))


@csrf_exempt
async def metrics(request: HttpRequest) -> HttpResponseBase:
    try:
        require_method(request, ("GET", "HEAD"))
        if not allowed(request):
            raise ServiceError(ErrorCode.FORBIDDEN, "Metrics are not served to this address.")
    except ServiceError as exc:
        return error_response(exc)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(REGISTRY), content_type=content_type)
