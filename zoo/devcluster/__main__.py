"""``python -m zoo.devcluster``: the dev cluster's CLI (see zoo.devcluster.cli)."""

import sys

from zoo.devcluster.cli import main

sys.exit(main())
