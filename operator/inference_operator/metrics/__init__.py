"""Reading each InferenceDeployment's load from Prometheus into the recommender's Observation."""
