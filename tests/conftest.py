"""Suite-wide settings: tests write nothing into the source tree.

Hypothesis keeps its example database in ``.hypothesis/`` under the working
directory by default; the ``adderhw`` profile turns it off (every run starts
from the seeded strategies, and failures print their reproducing example).
Per-test ``@settings(...)`` inherit it.
"""

from hypothesis import settings

settings.register_profile("adderhw", database=None, print_blob=True)
settings.load_profile("adderhw")
