# syntax=docker/dockerfile:1
# The bridge in a container. Build and run (README.md, "Docker"):
#   docker build -t mqtt-gpio-bridge .
#   docker run -d --network host --restart unless-stopped \
#     -v /etc/mqtt-gpio-bridge/config.yaml:/config/config.yaml:ro mqtt-gpio-bridge
# The config is read from /config/config.yaml; a broker password is best passed as a file
# (mqtt.password_file: /run/secrets/mqtt_password, see docker-compose.yml). The process runs
# as uid/gid 10001, which must be able to read both.

# Both stages use the same image, so the venv copied from the first finds the same Python.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Extras to install: empty for a board (what `run` needs), `sim` for the simulator's image.
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY mqtt_gpio_bridge ./mqtt_gpio_bridge
# amd64 and arm64 find a wheel for every dependency, and need no compiler. 32-bit ARM (armv7,
# Raspberry Pi OS 32-bit) finds none for pyzmq (nor PyYAML), so there the compilers are
# installed and pyzmq is built against Debian's libzmq (without libzmq3-dev it would download
# and build libzmq and libsodium too), in this stage only: the final image keeps none of it,
# only a mark that it needs Debian's libzmq5 at run time.
# The venv gets no pip of its own; the image's pip installs into it.
# hadolint ignore=DL3008
RUN python -m venv --without-pip /opt/mqtt-gpio-bridge \
    && if ! pip --python /opt/mqtt-gpio-bridge/bin/python install --only-binary=:all: ".${EXTRAS:+[$EXTRAS]}" ; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake libzmq3-dev \
        && pip --python /opt/mqtt-gpio-bridge/bin/python install ".${EXTRAS:+[$EXTRAS]}" \
        && touch /opt/mqtt-gpio-bridge/.needs-libzmq5 ; \
    fi

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mqtt-gpio-bridge" \
      org.opencontainers.image.description="MATRIX Creator/Voice GPIO (MALOS) to MQTT and Home Assistant" \
      org.opencontainers.image.licenses="MIT"
# A fixed numeric id, so that the host can grant it the config and the secret files.
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bridge \
    && mkdir /config
COPY --from=build /opt/mqtt-gpio-bridge /opt/mqtt-gpio-bridge
# Where pyzmq was compiled (32-bit ARM) it links Debian's libzmq: add its run-time library.
# hadolint ignore=DL3008
RUN if [ -e /opt/mqtt-gpio-bridge/.needs-libzmq5 ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libzmq5 \
        && rm -rf /var/lib/apt/lists/* ; \
    fi
ENV PATH=/opt/mqtt-gpio-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /config
USER 10001:10001
# Healthy while the retained status says online: connected to the broker and to MALOS.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD ["mqtt-gpio-bridge", "health", "--config", "/config/config.yaml"]
ENTRYPOINT ["mqtt-gpio-bridge"]
CMD ["run", "--config", "/config/config.yaml"]
