"""Bridge the GPIO pins of a MATRIX Creator / MATRIX Voice (MALOS driver) to MQTT."""

__version__ = "0.1.0"

__all__ = ["__version__"]
