import sys

from payswitch.client.cli import main

sys.exit(main())
