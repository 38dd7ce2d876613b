import sys

from controller.central.process import main

sys.exit(main())
