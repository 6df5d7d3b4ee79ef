"""The AG-UI door: `POST /ag-ui/<agent>` takes a `RunAgentInput` and streams the
run in AG-UI events; `GET /ag-ui/<agent>/threads/<threadId>/stream` resumes
after a frame's id (`Last-Event-ID` or `?after=`: `N` or `N.k`), which AG-UI itself
does not offer.

A `threadId` is the client's name for a conversation, per owner
(`conversations.client_threads`). Refusals before the stream are the HTTP
API's JSON errors with their status (`HttpAgent` reports `HTTP <status>: <body>`).
"""

from __future__ import annotations

from ag_ui.core import RunAgentInput
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conversations.client_threads import bind_thread, find_thread, took_message
from conversations.models import ClientThread
from conversations.ownership import Principal
from conversations.selectors import last_done_before, owned_conversation_or_error, pending_question
from streaming import metrics
from streaming.agents.registry import UnknownAgent, get_agent
from streaming.dialects.agui import CONTENT_TYPE, AguiTranslator
from streaming.dialects.agui_input import Action, Plan, plan
from streaming.dialects.door import dialect_view
from streaming.dialects.stream import idle_seconds, sse_response
from streaming.errors import ErrorCode, ServiceError, from_validation_error
from streaming.eventlog.backend import event_store
from streaming.eventlog.follow import Batches, follow_conversation, follow_run
from streaming.eventlog.subscription import Subscription, subscribe_ahead
from streaming.http.api import error_response
from streaming.http.auth import ensure_session, stream_token_hash
from streaming.http.sse import FramePoint, parse_frame_resume_point
from streaming.runtime.orchestrator import orchestrator
from streaming.states import ConversationStatus

MAX_THREAD_ID = 200


class Options(BaseModel):
    """Our options, in `forwardedProps.valuecell`."""

    model_config = ConfigDict(extra="forbid")

    # Name an existing conversation of yours with this (new) threadId: its next run continues it.
    conversation_id: str | None = Field(default=None, max_length=64)


def _run_input(request: HttpRequest) -> RunAgentInput:
    try:
        run_input = RunAgentInput.model_validate_json(request.body or b"")
    except RequestDataTooBig:
        raise ServiceError(ErrorCode.REQUEST_TOO_LARGE, "The request body is too large.") from None
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ServiceError(
                ErrorCode.INVALID_JSON, "The request body must be a RunAgentInput JSON object."
            ) from None
        raise from_validation_error(exc, "body") from None
    if not run_input.thread_id or len(run_input.thread_id) > MAX_THREAD_ID:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"Field 'threadId' must have 1 to {MAX_THREAD_ID} characters.")
    return run_input


def _options(run_input: RunAgentInput) -> Options:
    props = run_input.forwarded_props
    try:
        return Options.model_validate(props.get("valuecell") or {} if isinstance(props, dict) else {})
    except ValidationError as exc:
        raise from_validation_error(exc, "forwardedProps.valuecell") from None


async def _thread(principal: Principal, run_input: RunAgentInput) -> ClientThread | None:
    """The request's thread; `forwardedProps.valuecell.conversation_id` names a new one."""
    thread = await find_thread(principal, run_input.thread_id)
    wanted = _options(run_input).conversation_id
    if wanted is None or (thread is not None and thread.conversation_id == wanted):
        return thread
    if thread is not None:
        raise ServiceError(
            ErrorCode.INVALID_FIELD,
            f"Field 'forwardedProps.valuecell.conversation_id': thread {run_input.thread_id[:80]!r} "
            "already names another conversation.",
        )
    conversation = await owned_conversation_or_error(principal, wanted)
    await bind_thread(principal, run_input.thread_id, conversation.id)
    return await find_thread(principal, run_input.thread_id)


def _known_agent(agent_name: str) -> None:
    try:
        get_agent(agent_name)
    except UnknownAgent:
        raise ServiceError(ErrorCode.UNKNOWN_AGENT, f"No agent named {agent_name[:100]!r}.") from None


@dialect_view("POST", refusal=error_response)
async def run(request: HttpRequest, principal: Principal, agent_name: str) -> HttpResponseBase:
    run_input = _run_input(request)
    _known_agent(agent_name)
    thread = await _thread(principal, run_input)
    conversation = thread.conversation if thread is not None else None
    waiting_for = None
    if conversation is not None and conversation.status == ConversationStatus.REQUIRE_USER_INPUT:
        waiting_for = await pending_question(conversation.id)
    todo = plan(
        run_input,
        exists=thread is not None,
        taken=thread.last_message_id if thread is not None else "",
        waiting_for=waiting_for,
    )
    if todo.action in (Action.START, Action.ANSWER):
        return await _submit(request, principal, agent_name, run_input, thread, todo)
    assert conversation is not None  # a plan without an input needs an existing thread
    translator = AguiTranslator(conversation.id, run_input.thread_id, run_input.run_id)
    last = await event_store().last_seq(conversation.id)
    token_hash = stream_token_hash(request, principal)
    if todo.action == Action.CANCEL:
        await orchestrator.cancel(principal, conversation.id)
        # The waiting run is not `running`: follow the conversation to the cancel's `done`.
        batches: Batches = follow_conversation(conversation.id, last, idle_seconds=idle_seconds())
        return sse_response(translator, batches, conversation.id, CONTENT_TYPE, token_hash=token_hash)
    return await _resume(translator, conversation.id, FramePoint(last), token_hash)


async def _submit(
    request: HttpRequest,
    principal: Principal,
    agent_name: str,
    run_input: RunAgentInput,
    thread: ClientThread | None,
    todo: Plan,
) -> HttpResponseBase:
    token_hash = stream_token_hash(request, principal)
    principal = await ensure_session(request, principal)
    joined: list[Subscription] = []

    async def join(conversation_id: str) -> None:
        joined.append(await subscribe_ahead(conversation_id))

    conversation_id = thread.conversation_id if thread is not None else None
    submission = await orchestrator.submit(principal, todo.query, agent_name, conversation_id, before_start=join)
    cid = submission.conversation_id
    if thread is None:
        await bind_thread(principal, run_input.thread_id, cid, todo.message_id)
    elif todo.message_id:
        await took_message(thread, todo.message_id)
    subscription = joined[0] if joined else None
    batches = follow_run(cid, submission.after_seq, subscription=subscription, idle_seconds=idle_seconds())
    translator = AguiTranslator(cid, run_input.thread_id, run_input.run_id)
    return sse_response(translator, batches, cid, CONTENT_TYPE, token_hash=token_hash)


async def _resume(
    translator: AguiTranslator, conversation_id: str, after: FramePoint, token_hash: str | None
) -> HttpResponseBase:
    """The thread's run that holds `after`, re-opened there (read from its start)."""
    translator.resume_after = after
    start = await last_done_before(conversation_id, after.seq)
    batches = follow_run(conversation_id, start, idle_seconds=idle_seconds())
    return sse_response(translator, batches, conversation_id, CONTENT_TYPE, token_hash=token_hash)


@dialect_view("GET", refusal=error_response)
async def thread_stream(
    request: HttpRequest, principal: Principal, agent_name: str, thread_id: str
) -> HttpResponseBase:
    after = parse_frame_resume_point(request)
    _known_agent(agent_name)
    thread = await find_thread(principal, thread_id)
    if thread is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"No thread {thread_id[:80]!r}.")
    last = await event_store().last_seq(thread.conversation_id)
    if after.seq > last:
        raise ServiceError(
            ErrorCode.INVALID_RESUME_POINT, f"The thread's last seq is {last}; cannot resume after {after.seq}."
        )
    run_id = request.GET.get("runId") or None
    metrics.resumed(metrics.SSE)
    translator = AguiTranslator(thread.conversation_id, thread_id, run_id)
    return await _resume(translator, thread.conversation_id, after, stream_token_hash(request, principal))
