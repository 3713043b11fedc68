"""The tools: each handler turns its arguments into a GLM request and the answer into a result model.

Everything around them (flat parameters, structured output, error results) is done once by
`glm_mcp.server.tooling`.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

from glm_mcp.server.arguments import ChatArguments, ResultArguments, WebSearchArguments
from glm_mcp.server.results import ChatResult, SubmittedTask, TaskResult, WebSearchResult
from glm_mcp.server.state import AppState
from glm_mcp.server.tooling import add_model_tool


async def chat(app: AppState, ctx: Context, args: ChatArguments) -> ChatResult:
    completion = await app.glm.chat(args.chat_request(app.settings.default_model))
    return ChatResult.from_completion(completion)


async def web_search_chat(app: AppState, ctx: Context, args: WebSearchArguments) -> WebSearchResult:
    completion = await app.glm.chat(args.chat_request(app.settings.default_model))
    return WebSearchResult.from_completion(completion)


async def submit_async(app: AppState, ctx: Context, args: ChatArguments) -> SubmittedTask:
    task = await app.glm.submit_async(args.chat_request(app.settings.default_model))
    return SubmittedTask.from_task(task)


async def get_result(app: AppState, ctx: Context, args: ResultArguments) -> TaskResult:
    poll = await app.glm.async_result(args.task_id)
    return TaskResult.from_poll(args.task_id, poll)


def register_tools(server: MCPServer[Any]) -> None:
    common = {"on_failure": AppState.describe_failure}
    add_model_tool(
        server,
        chat,
        arguments=ChatArguments,
        result=ChatResult,
        **common,
        name="chat",
        title="Ask a GLM model",
        description=(
            "Ask a GLM model (Zhipu / Z.ai) and get its answer: a second opinion, a draft, a translation "
            "(GLM is strong in Chinese), or a question about an image with a vision model. Give `prompt` for "
            "one message or `messages` for a whole conversation. Returns the answer, the model's reasoning "
            "when thinking is on, token usage and the request id."
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    add_model_tool(
        server,
        web_search_chat,
        arguments=WebSearchArguments,
        result=WebSearchResult,
        **common,
        name="web_search_chat",
        title="Answer with GLM web search",
        description=(
            "Answer a question from a live web search on the GLM platform: the model searches, reads the "
            "results and answers citing them as [ref_N]. Returns the answer and its sources (title, URL, "
            "site, date, snippet), and says so plainly when the search found nothing."
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    add_model_tool(
        server,
        submit_async,
        arguments=ChatArguments,
        result=SubmittedTask,
        **common,
        name="submit_async",
        title="Start a GLM chat job",
        description=(
            "Start a chat as a background job on the GLM platform and return at once with its task_id; fetch "
            "the answer later with get_result. For long generations that should not hold up the "
            "conversation. Takes the same inputs as chat."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    add_model_tool(
        server,
        get_result,
        arguments=ResultArguments,
        result=TaskResult,
        **common,
        name="get_result",
        title="Get a GLM job's result",
        description=(
            "The status of a job started with submit_async and, once it has succeeded, its answer (the same "
            "fields chat returns). PROCESSING means it is still running: ask again in a few seconds."
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
    )
