"""inference-operator: serve LLMs with vLLM on Kubernetes and scale them to demand."""

__version__ = "0.1.0"
