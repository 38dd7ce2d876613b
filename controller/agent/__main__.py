import sys

from controller.agent.agent_command import main

sys.exit(main())
