"""``unmix separate --cluster ADDRESS``: one run's songs as tasks on a Ray cluster (docs/SCALING.md).

Ray is optional (``pip install 'unmix-desktop[cluster]'``); nothing here imports it until a run
asks for a cluster. :mod:`.stats` (progress, report) and :mod:`.worker` (what a worker process
does) are plain Python; :mod:`.driver` talks to Ray.
"""

from .driver import run_cluster

__all__ = ["run_cluster"]
