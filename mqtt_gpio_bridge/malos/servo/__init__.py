"""The MALOS servo driver: hobby servos on GPIO pins, driven by PWM (config only, no updates)."""
