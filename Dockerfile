# cometbot: docker build -t cometbot . && docker run -v $PWD/config.toml:/config/config.toml:ro -v cometbot-data:/data cometbot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOT_STORAGE__PATH=/data/bot.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . \
    && useradd --create-home --uid 10001 cometbot \
    && mkdir -p /data /config \
    && chown cometbot /data

USER cometbot
# The SQLite database (conversations, tasks, buttons) lives here; keep it on a volume.
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot", "--config", "/config/config.toml"]
