"""The admission rules' accelerator vocabulary (api/models.py) agrees with the catalogue: every
instance, family and accelerator name the planner knows is recognised as its own kind's and
never as the other's."""

from __future__ import annotations

import re

import pytest

from inference_operator.api.models import NEURON_NAMES, NVIDIA_NAMES
from inference_operator.capacity.catalogue import INSTANCES

OWN = {"nvidia": NVIDIA_NAMES, "neuron": NEURON_NAMES}
OTHER = {"nvidia": NEURON_NAMES, "neuron": NVIDIA_NAMES}


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda i: i.name)
def test_catalogue_names_belong_to_their_kind(instance: object) -> None:
    kind, name = instance.kind, instance.name  # type: ignore[attr-defined]
    for n in (name, name.split(".")[0], f"ml.{name}", instance.accelerator):  # type: ignore[attr-defined]
        assert re.match(OWN[kind], n.lower()), (kind, n)
        assert not re.match(OTHER[kind], n.lower()), (kind, n)
