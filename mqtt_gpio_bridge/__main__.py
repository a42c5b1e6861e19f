"""`python -m mqtt_gpio_bridge`: the same as the `mqtt-gpio-bridge` command."""

import sys

from .cli import main

sys.exit(main())
