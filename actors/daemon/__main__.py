"""``python -m actors.daemon``: the daemon."""

import sys

from actors.daemon.daemon import main

sys.exit(main())
