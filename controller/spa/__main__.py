import sys

from controller.spa.spa_service import main

sys.exit(main())
