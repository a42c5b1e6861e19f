"""The MQTT side: one broker session fed by the poll loop, and the topic names."""
