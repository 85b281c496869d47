"""Query templates: `{{ variable }}` replaced by the values the decision core
chose (modelrollout.rollout.query_variables), escaped for a PromQL
double-quoted string, where queries use them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from modelrollout.api.spec import QUERY_VARIABLE


class TemplateError(ValueError):
    """A query names a variable that does not exist."""


def render(query: str, values: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"unknown variable {{{{ {name} }}}} in query")
        return values[name].replace("\\", "\\\\").replace('"', '\\"')

    return QUERY_VARIABLE.sub(substitute, query)
