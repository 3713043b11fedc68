"""A real PDF, DOCX and WAV (65 s, so split) through `files` in `chat`, from outside the process: the real `glm-mcp`
command over stdio and over HTTP driven by the SDK's Client, and over stdio by the TypeScript SDK's client (what VS
Code is built on). Each time the emulator counts the calls: the second call with the same files, even from a new
process on the same registry, sends nothing to the file parser or speech-to-text; a format the platform cannot
read is refused by name."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.emulator import Emulator
from rigs import documents
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import COMMAND, http_server, server_env
from tests.test_tools import failed, ok
from tests.test_workspace import sent_text

pytestmark = pytest.mark.anyio

FILES = ["report.pdf", "letter.docx", "meeting.wav"]
WORDS: dict[float, str] = {3: "first we plan", 40: "then we build", 61: "and we ship"}


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    root = tmp_path / "papers"
    root.mkdir()
    (root / "report.pdf").write_bytes(documents.pdf([["Sales grew in March."], ["Page two: outlook."]]))
    (root / "letter.docx").write_bytes(documents.docx(["Dear board,", "We propose a merger."]))
    (root / "meeting.wav").write_bytes(documents.wav(65, WORDS))
    (root / "voice.ogg").write_bytes(b"OggS" + bytes(100))
    return root


def environment(emulator: Emulator, data_dir: Path, papers: Path) -> dict[str, str]:
    return server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=str(data_dir), GLM_FILES_ROOTS=str(papers)
    )


def assert_read(emulator: Emulator, *, parses: int, parts: int) -> None:
    """The documents' and the recording's text reached the model, after `parses` and `parts` platform calls."""
    text = sent_text(emulator)
    assert "Sales grew in March.\n\nPage two: outlook." in text and "Dear board,\nWe propose a merger." in text
    assert " ".join(WORDS.values()) in text
    assert len(upstream_calls(emulator, "/files/parser/create")) == parses
    assert len(upstream_calls(emulator, "/audio/transcriptions")) == parts


@asynccontextmanager
async def connected(transport: str, env: dict[str, str]) -> AsyncIterator[Client]:
    if transport == "stdio":
        async with Client(StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=env)) as client:
            yield client
        return
    with http_server(env=env) as origin:
        async with Client(origin + "/mcp") as client:
            yield client


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_documents_and_a_long_recording_over_the_real_transports(
    transport: str, emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    env = environment(emulator, data_dir, papers)
    async with connected(transport, env) as client:
        out = ok(await client.call_tool("chat", {"prompt": "Summarise.", "files": FILES}))
        assert_read(emulator, parses=2, parts=3)
        assert [f["kind"] for f in out["files"]] == ["document", "document", "audio"]
        refused = failed(await client.call_tool("chat", {"prompt": "Listen.", "files": ["voice.ogg"]}))
        assert refused["field"] == "files" and "voice.ogg is Ogg audio" in refused["message"]
    emulator.state.clear()
    async with connected(transport, env) as again:  # a new process, the same registry
        second = ok(await again.call_tool("chat", {"prompt": "Summarise again.", "files": FILES}))
    assert_read(emulator, parses=0, parts=0)
    assert [f["read_by"].endswith("before") for f in second["files"]] == [True, True, True]


TS_FILES = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

(async () => {
  const [command, ...args] = JSON.parse(process.env.SERVER_COMMAND);
  const client = new Client({ name: "glm-mcp-files-test", version: "0.0.0" }, { capabilities: {} });
  await client.connect(new StdioClientTransport({ command, args, env: JSON.parse(process.env.SERVER_ENV) }));
  for (const files of JSON.parse(process.env.CALLS)) {
    const result = await client.callTool({ name: "chat", arguments: { prompt: "Read these.", files } },
                                         undefined, { timeout: 120000 });
    console.log(JSON.stringify(result));
  }
  await client.close();
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


async def test_the_typescript_sdks_client_sends_documents_and_a_recording(
    emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    env = node_env(
        {
            "NODE_PATH": str(node_modules(TS_SDK)),
            "SERVER_COMMAND": json.dumps(COMMAND),
            "SERVER_ENV": json.dumps(environment(emulator, data_dir, papers)),
            "CALLS": json.dumps([FILES, FILES, ["voice.ogg"]]),
        }
    )
    with anyio.fail_after(180):
        done = await anyio.run_process(["node", "-e", TS_FILES], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    first, second, refused = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    results: list[dict[str, Any]] = [first["structuredContent"], second["structuredContent"]]
    assert not first.get("isError") and not second.get("isError")
    assert [f["path"] for f in results[0]["files"]] == FILES
    assert [f["read_by"] for f in results[1]["files"]] == [
        "file parser (lite), read before",
        "file parser (lite), read before",
        "speech-to-text (glm-asr-2512), heard before",
    ]
    assert_read(emulator, parses=2, parts=3)  # all from the first call: the second paid nothing
    assert refused["isError"] and "voice.ogg is Ogg audio" in refused["content"][0]["text"]
