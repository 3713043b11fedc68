"""A batch's price beside the same prompts sent one by one with `chat`, as the server's own `usage` tool prices them.

The same prompts go to the same model both ways, through one `glm-mcp` over stdio with the emulator behind it: one
`chat` call each, then one `batch` of them all, followed with `get_result` to its end. The emulator answers a request
from its messages and model alone, so both ways spend the same tokens; what differs is the price the platform asks,
half for a batch ("50% of the standard API", docs/usage.md), which `usage` applies to the batch's tokens (recorded
as `<model>@batch`). The figure is that price beside the chat price: the saving an agent gets for work that can wait.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from bench.figures import Figure
from bench.processes import GLM_MCP, emulator, server_env, shown

MODEL = "glm-4.6"
WAIT_S = 600.0


def _prompts(count: int) -> list[str]:
    return [f"Classify issue #{i}: 'the settings page loses its changes after a reload'" for i in range(count)]


async def _structured(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return dict(result.structured_content)


async def batch_price(count: int) -> list[Figure]:
    """The price of `count` prompts as one batch, beside the same prompts sent one by one."""
    prompts = _prompts(count)
    with emulator() as emu:
        env = server_env(emu.origin, GLM_MCP_TOOLSETS="core,batch,usage")
        params = StdioServerParameters(command=GLM_MCP[0], args=GLM_MCP[1:], env=env)
        async with Client(params, mode="legacy") as client:
            for prompt in prompts:
                await _structured(client, "chat", {"prompt": prompt, "model": MODEL})
            started = await _structured(client, "batch", {"prompts": prompts, "model": MODEL})
            with anyio.fail_after(WAIT_S):
                while (await _structured(client, "get_result", {"task_id": started["job_id"]}))["status"] == "running":
                    pass
            report = await _structured(client, "usage", {"by": "model", "days": 1})
    rows = {row["model"]: row for row in report["rows"]}
    chat, batch = rows[MODEL], rows[MODEL + "@batch"]
    command = shown(GLM_MCP)
    return [
        Figure(
            f"batch price ({count} prompts, {MODEL})",
            batch["cost"],
            chat["cost"],
            report.get("currency", "USD"),
            f"{command}: batch of the {count} prompts, priced by usage",
            f"{command}: chat, once per prompt, priced by usage",
            detail=f"tokens in/out: batch {batch['prompt_tokens']}/{batch['completion_tokens']}, "
            f"chat {chat['prompt_tokens']}/{chat['completion_tokens']}",
        )
    ]
