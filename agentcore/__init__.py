"""agentcore: the platform-neutral core of the bots (memory, agent loop, storage, LLM seam)."""
