import sys

from controller.scsc.service import main

sys.exit(main())
