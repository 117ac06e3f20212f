import sys

from fakelens.cli import main

sys.exit(main())
