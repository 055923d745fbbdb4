"""The JSON API answers its own OpenAPI document: schemathesis generates requests from
``/openapi.json`` (valid and invalid parameters alike) and checks every answer against it
(status codes, content types, bodies); none may be a 500. 30 cases per operation, eight
operations, two databases: a few hundred cases in all, in seconds.

(Driven by hypothesis directly: schemathesis's pytest plugin does not load on this pytest.)"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import View


def test_the_api_answers_its_openapi_document(view: View) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", view.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def answers(case: Any) -> None:
            case.call_and_validate()

        answers()
