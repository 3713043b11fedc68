// A Node MCP server on the TypeScript SDK doing what bench/bare_server.py's chat tool does, for comparison.
//
// `node node_server.mjs --upstream URL`: over stdio, one tool `chat(prompt)` that makes the same streamed request
// as glm-mcp (the body from the environment variable BENCH_UPSTREAM_BODY, built by glm-mcp's own code, with the
// call's prompt in place of the one it was built with; the key from BENCH_UPSTREAM_KEY), reads the SSE to its end,
// joins the chunks' delta.content and returns the text.
//
// bench/peers.py runs a copy of this file placed beside the SDK's node_modules (.cache/node-tools/), since an ES
// module resolves its imports from where it lies and NODE_PATH does not apply to them.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const at = process.argv.indexOf("--upstream");
if (at < 0 || !process.argv[at + 1]) {
  console.error("usage: node node_server.mjs --upstream URL");
  process.exit(2);
}
const url = process.argv[at + 1].replace(/\/+$/, "") + "/chat/completions";
const body = process.env.BENCH_UPSTREAM_BODY;
const builtWith = JSON.parse(body).messages.at(-1).content;
const placeholder = JSON.stringify(builtWith);
const headers = {
  Authorization: `Bearer ${process.env.BENCH_UPSTREAM_KEY}`,
  "Content-Type": "application/json",
};

/** The streamed chat completion's text, read to the end. */
async function streamedText(sent) {
  const response = await fetch(url, { method: "POST", headers, body: sent });
  if (!response.ok) throw new Error(`HTTP ${response.status} from the upstream`);
  const parts = [];
  let buffer = "";
  const take = (line) => {
    if (!line.startsWith("data:")) return;
    const data = line.slice(5).trim();
    if (data === "[DONE]") return;
    for (const choice of JSON.parse(data).choices) parts.push(choice.delta.content ?? "");
  };
  for await (const text of response.body.pipeThrough(new TextDecoderStream())) {
    buffer += text;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      take(buffer.slice(0, end).replace(/\r$/, ""));
      buffer = buffer.slice(end + 1);
    }
  }
  take(buffer);
  return parts.join("");
}

const server = new McpServer({ name: "bench-node", version: "0.0.0" });
server.registerTool(
  "chat",
  { description: "The streamed chat completion's text, read to the end.", inputSchema: { prompt: z.string() } },
  async ({ prompt }) => {
    const sent = prompt === builtWith ? body : body.replace(placeholder, () => JSON.stringify(prompt));
    return { content: [{ type: "text", text: await streamedText(sent) }] };
  },
);
await server.connect(new StdioServerTransport());
