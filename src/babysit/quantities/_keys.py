"""Key templates: how a quantity names what it writes into ``History.series`` / ``History.histograms``.

A template is a fixed string with at most one ``{target}`` placeholder: ``"act/{target}/std"``,
``"ratio/{target}"``, ``"grad/carry"``. The strings are the ones babysit has always written, so old
``history.json`` files, the report and TensorBoard read the same keys; the templates are the one place
they are spelled. Parsing is the template read backwards: a fixed head, the target, a fixed tail (a target
may itself contain ``/``).
"""

from __future__ import annotations

from functools import cache, lru_cache

PLACEHOLDER = "{target}"
# Every sampled step's readout builds each of its keys again, and the diagnosis matches every recorded key
# against templates: both are memoised (a model's keys are a few hundred; the bound only guards a process
# that trains many different models).
MEMO = 16384


@cache
def split(template: str) -> tuple[str, str] | None:
    """``(head, tail)`` around the ``{target}`` placeholder, or None for a template without one."""
    if PLACEHOLDER not in template:
        return None
    head, _, tail = template.partition(PLACEHOLDER)
    if PLACEHOLDER in tail:
        raise ValueError(f"key template {template!r} has more than one {PLACEHOLDER} placeholder")
    return head, tail


@lru_cache(maxsize=MEMO)
def build(template: str, target: str | None) -> str:
    """The key of ``template`` for ``target`` (None for a template without a placeholder)."""
    parts = split(template)
    if parts is None:
        if target is not None:
            raise ValueError(f"key {template!r} is one series for the whole model; it takes no target ({target!r})")
        return template
    if not target:
        raise ValueError(f"key template {template!r} needs a target (a layer or parameter name)")
    return parts[0] + target + parts[1]


@lru_cache(maxsize=MEMO)
def match(template: str, key: str) -> tuple[bool, str | None]:
    """``(True, target)`` when ``key`` was built from ``template`` (target None without a placeholder)."""
    parts = split(template)
    if parts is None:
        return key == template, None
    head, tail = parts
    if len(key) > len(head) + len(tail) and key.startswith(head) and key.endswith(tail):
        return True, key[len(head) : len(key) - len(tail)]
    return False, None
