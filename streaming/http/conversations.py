"""The conversations API: list, detail, delete, history items, stream, cancel."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from conversations import services
from conversations.ownership import Principal
from conversations.selectors import ahistory, conversation_detail, list_conversations, owned_conversation_or_error
from streaming import metrics
from streaming.http.api import api_view
from streaming.http.auth import stream_token_hash
from streaming.http.sse import parse_resume_point, resume_response
from streaming.runtime.orchestrator import orchestrator


@api_view("GET")
async def conversation_list(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    return JsonResponse({"conversations": await list_conversations(principal)})


@api_view("GET", "DELETE")
async def conversation(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    conversation = await owned_conversation_or_error(principal, conversation_id)
    if request.method == "DELETE":
        await services.delete_conversation(conversation)
        return HttpResponse(status=204)
    return JsonResponse(await conversation_detail(conversation))


@api_view("GET")
async def conversation_items(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    conversation = await owned_conversation_or_error(principal, conversation_id)
    data = await ahistory(conversation.id)
    return JsonResponse({"conversation_id": conversation.id, "status": conversation.status, **data})


@api_view("GET")
async def conversation_stream(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    after = parse_resume_point(request)
    conversation = await owned_conversation_or_error(principal, conversation_id)
    metrics.resumed(metrics.SSE)
    return await resume_response(
        conversation.id, conversation.status, after, token_hash=stream_token_hash(request, principal)
    )


@api_view("POST")
async def conversation_cancel(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    await orchestrator.cancel(principal, conversation_id)
    return JsonResponse({"conversation_id": conversation_id, "status": "cancelling"}, status=202)
