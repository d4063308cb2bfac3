"""`python -m tthc.sample`: write the sample sources."""
import sys

from tthc.sample.generate import main

sys.exit(main())
