"""Home Assistant MQTT discovery."""
