"""The edition's Great Expectations suites (``suites``) and how they are run (``validate``).

GX reads ``GX_ANALYTICS_ENABLED`` when imported; it is set here, before any module of this package imports GX,
so no usage statistics are ever sent (the contexts also switch analytics off in their config).
"""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
