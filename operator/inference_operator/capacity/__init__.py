"""Capacity planning: model memory against accelerator memory, and the instance catalogue."""
