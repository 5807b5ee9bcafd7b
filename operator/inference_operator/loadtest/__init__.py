"""Measure what one replica sustains: a streaming, open-loop rate sweep against an OpenAI API."""
