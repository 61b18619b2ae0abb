import sys

from payswitch.switch.cli import main

sys.exit(main())
