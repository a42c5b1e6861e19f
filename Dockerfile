FROM python:3.12-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mqtt_gpio_bridge ./mqtt_gpio_bridge
RUN pip install --no-cache-dir . && rm -rf /src && useradd --system --no-create-home bridge
WORKDIR /
USER bridge
# Healthy while the retained status says online: connected to the broker and to MALOS.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD ["mqtt-gpio-bridge", "health", "--config", "/config/config.yaml"]
ENTRYPOINT ["mqtt-gpio-bridge"]
CMD ["run", "--config", "/config/config.yaml"]
