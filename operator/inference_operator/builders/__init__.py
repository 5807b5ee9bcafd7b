"""Pure builders: an InferenceDeployment spec in, Kubernetes manifests (dicts) out."""
