import sys

from controller.spa.service import main

sys.exit(main())
