FROM python:3.12-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mqtt_gpio_bridge ./mqtt_gpio_bridge
RUN pip install --no-cache-dir . && rm -rf /src && useradd --system --no-create-home bridge
WORKDIR /
USER bridge
ENTRYPOINT ["mqtt-gpio-bridge"]
CMD ["run", "--config", "/config/config.yaml"]
