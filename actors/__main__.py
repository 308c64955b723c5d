"""``python -m actors``: the daemon, as ``bin/orchestrord`` and ``orchestrord`` run it."""

import sys

from actors.daemon.daemon import main

if __name__ == "__main__":
    sys.exit(main())
