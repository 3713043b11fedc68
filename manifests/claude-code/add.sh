# Claude Code: add glm-mcp with one of these commands (then `claude mcp list` shows it).
# Add `--scope user` to have it in every project, `--scope project` to write it to the project's .mcp.json.

# Today, from a checkout: `scripts/serve --version` installed glm-mcp in the checkout's .venv; give its full path.
claude mcp add glm --transport stdio --env GLM_API_KEY=your-id.your-secret -- /path/to/glm-mcp/.venv/bin/glm-mcp

# After the first release (glm-mcp-server on PyPI): uvx downloads and starts it.
claude mcp add glm --transport stdio --env GLM_API_KEY=your-id.your-secret -- uvx --from glm-mcp-server glm-mcp

# HTTP: a glm-mcp already serving (`glm-mcp --transport http`), with the token it was started with.
claude mcp add --transport http glm http://127.0.0.1:8000/mcp --header "Authorization: Bearer $GLM_MCP_HTTP_TOKEN"
