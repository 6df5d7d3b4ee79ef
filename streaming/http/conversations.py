"""The conversations API: list, detail, delete, history items, stream, cancel."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from streaming.http.api import ApiError, api_view
from streaming.runtime.orchestrator import orchestrator
from streaming.http.sse import parse_resume_point, sse_response

from conversations.models import ConversationStatus
from conversations.ownership import Principal
from conversations.selectors import ahistory, conversation_detail, list_conversations, owned_conversation


async def _owned_or_404(principal: Principal, conversation_id: str):
    conversation = await owned_conversation(principal, conversation_id)
    if conversation is None:
        raise ApiError(404, "conversation_not_found", f"No conversation {conversation_id!r}.")
    return conversation


@api_view("GET")
async def conversation_list(request, principal):
    return JsonResponse({"conversations": await list_conversations(principal)})


@api_view("GET", "DELETE")
async def conversation(request, principal, conversation_id: str):
    conversation = await _owned_or_404(principal, conversation_id)
    if request.method == "DELETE":
        if conversation.status != ConversationStatus.IDLE:
            raise ApiError(409, "conversation_busy", "Cancel the running task before deleting this conversation.")
        await conversation.adelete()
        return HttpResponse(status=204)
    return JsonResponse(await conversation_detail(conversation))


@api_view("GET")
async def conversation_items(request, principal, conversation_id: str):
    conversation = await _owned_or_404(principal, conversation_id)
    data = await ahistory(conversation.id)
    return JsonResponse({"conversation_id": conversation.id, "status": conversation.status, **data})


@api_view("GET")
async def conversation_stream(request, principal, conversation_id: str):
    after = parse_resume_point(request)
    conversation = await _owned_or_404(principal, conversation_id)
    return await sse_response(conversation.id, after)


@api_view("POST")
async def conversation_cancel(request, principal, conversation_id: str):
    await orchestrator.cancel(principal, conversation_id)
    return JsonResponse({"conversation_id": conversation_id, "status": "cancelling"}, status=202)
