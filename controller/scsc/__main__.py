import sys

from controller.scsc.scsc_service import main

sys.exit(main())
