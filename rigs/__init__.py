"""Real parts the tests and the benchmarks both run: a throwaway PostgreSQL server, a round-robin balancer, real
documents and recordings (`documents.py`).

Neither `tests` nor `bench` imports the other; what both need lives here. Not shipped: the wheel holds
`glm_mcp` only (pyproject.toml) and the MCPB bundle copies `glm_mcp` only (scripts/stage-mcpb).
"""
