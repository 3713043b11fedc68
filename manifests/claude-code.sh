# Claude Code: add glm-mcp with one of these commands (then `claude mcp list` shows it).

# stdio: Claude Code starts the server itself. Put your key in; add `--scope user` to have it in every project.
claude mcp add glm --env GLM_API_KEY=your-id.your-secret -- uvx --from glm-mcp-server glm-mcp

# HTTP: a glm-mcp already serving (`glm-mcp --transport http`), with the token it was started with.
claude mcp add --transport http glm http://127.0.0.1:8000/mcp --header "Authorization: Bearer $GLM_MCP_HTTP_TOKEN"
