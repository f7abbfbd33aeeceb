"""The development composition root: what ``psbridge dev`` (``make run``) needs and production does not.

``servers`` finds or starts PostgreSQL and Redis (every command uses it), ``seed`` writes the demo firm,
``supervisor`` runs dev's child processes and stops them cleanly, ``demo`` is the ``dev`` command,
``reset`` wipes the demo for ``dev --reset``, and ``report`` turns a failure into one line. Nothing in
the layers imports this package (an import contract says so).
"""
