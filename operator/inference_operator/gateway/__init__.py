"""An OpenAI-compatible proxy in front of the vLLM replicas: routes by model name, balances by
outstanding requests and zone, and holds requests (bounded) while a model has no free replica,
including at zero replicas."""
