# Firewatch worker / API image. Used by docker-compose.yml (which also runs Temporal).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FIREWATCH_DATA_DIR=/data

WORKDIR /app
COPY . .

# /data exists in the image so a fresh named volume inherits the app user's ownership.
RUN pip install . \
    && useradd --create-home --uid 10001 firewatch \
    && mkdir -p /data \
    && chown firewatch:firewatch /data

USER firewatch
VOLUME ["/data"]
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "starter.api.app:app", "--host", "0.0.0.0", "--port", "8000"]
