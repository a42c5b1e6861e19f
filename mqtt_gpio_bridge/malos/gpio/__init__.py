"""The MALOS GPIO driver: its wire format, the pins' state and the `set` payloads."""
