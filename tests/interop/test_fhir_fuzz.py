"""Whatever arrives, import either succeeds or raises our typed error — never anything else."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.errors import MedFusionError
from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
from medfusion.synth import generate_resident

_BASE = json.loads(json.dumps(chart_to_bundle(generate_resident(5, 3))))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


_ALL_PATHS = [p for p in _paths(_BASE) if p]


@settings(
    max_examples=int(os.environ.get("MEDFUSION_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("MEDFUSION_FUZZ_EXAMPLES") is None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(path=st.sampled_from(_ALL_PATHS), value=json_values, drop=st.booleans())
def test_mutated_bundles_fail_cleanly(path: tuple[Any, ...], value: Any, drop: bool) -> None:
    bundle = copy.deepcopy(_BASE)
    parent = bundle
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    with contextlib.suppress(MedFusionError):
        bundle_to_charts(bundle)


@given(value=json_values)
def test_arbitrary_json_fails_cleanly(value: Any) -> None:
    with contextlib.suppress(MedFusionError):
        bundle_to_charts(value)
