import sys

from controller.agent.process import main

sys.exit(main())
