import sys

from payswitch.loadtest.cli import main

sys.exit(main())
