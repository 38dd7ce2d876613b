import sys

from controller.central.central_controller import main

sys.exit(main())
