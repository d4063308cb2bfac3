"""`python -m simulator`: write the sample sources."""
import sys

from simulator.generate import main

sys.exit(main())
