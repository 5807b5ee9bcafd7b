"""The operator's KEDA external scaler (gRPC): KEDA asks, the recommender answers."""
