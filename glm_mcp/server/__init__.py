"""The MCP plumbing: registration and structured output, both tasks forms, stdio, HTTP, cancellation, auth and
OAuth. It knows no tool by name (the tools are `glm_mcp.tools`; `glm_mcp.app` puts the two together)."""
