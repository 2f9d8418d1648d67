"""A render process whose sandbox lost two prices: what a sandbox hole looks like from outside.

`round`'s precision is not priced (Python computes 10 ** precision in C for seconds, as before
issue 21) and text repetition is not priced (`'x' * 10 ** 9` asks for a gigabyte at once):
the RenderPool must stop the first by its deadline and the second by its memory limit.

    python -m tests.templating.runner.holey_child FD MEMORY_BYTES
"""

from __future__ import annotations

import sys
from typing import Any, cast

from credbatch.templating import budget, pricing


def _unpriced(*args: Any, **kwargs: Any) -> tuple[int, int]:
    return (0, 1)


def _unpriced_arithmetic(self: budget.Budget, operator: str, left: Any, right: Any) -> None:
    return None


if __name__ == "__main__":
    # Before the sandbox builds its environments from the price list.
    cast(dict[str, Any], pricing.FILTER_PRICES)["round"] = _unpriced
    budget.Budget._price = _unpriced_arithmetic  # type: ignore[method-assign]
    from credbatch.templating.runner import child

    child.main(sys.argv[1:])
