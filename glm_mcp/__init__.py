"""glm-mcp: the GLM models of the Zhipu / Z.ai open platform as MCP tools."""

__version__ = "0.1.0"
