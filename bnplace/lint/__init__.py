"""``bnplace lint``, the libcst side: source -> layer sequences -> rules -> findings -> reports.

``sequences`` reads source into the neutral :class:`Description` (``layers``); the rules read only
that and yield :class:`Finding` objects; ``output`` formats findings. Another front end (the graph
side's ``bnplace check``) builds a Description from a traced model, with ``Location(module=...)``
positions, and reuses :func:`run_rules` and the formatters unchanged::

    findings = run_rules(description, Settings().enabled_for(Path(spec)))
    print(output.text([replace(f, path=spec) for f in findings]))

Nothing here imports torch or runs the code it reads.
"""

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer, Location
from bnplace.lint.rules import DEFAULT_CODES, RULES, run_rules

__all__ = ["DEFAULT_CODES", "RULES", "Description", "Finding", "Layer", "Location", "run_rules"]
