"""The song library and the batch queue, without Qt: :mod:`.queue` (songs waiting to be separated,
persisted as JSON) and :mod:`.index` (every song separated before, from the stem cache and the saved
sessions). The window shows them through ``ui/queue_view.py`` and ``ui/library_view.py``."""
