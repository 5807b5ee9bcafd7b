"""The scaling brain: `recommend(observation, policy, state, now)`, pure and clock-free."""

from inference_operator.scaling.model import (
    Observation,
    Policy,
    Recommendation,
    Schedule,
    State,
    Targets,
)
from inference_operator.scaling.recommend import recommend

__all__ = ["Observation", "Policy", "Recommendation", "Schedule", "State", "Targets", "recommend"]
