"""``python -m chestxai`` (what ``torchrun -m chestxai train ...`` runs)."""

import sys

from chestxai.cli import main

sys.exit(main())
