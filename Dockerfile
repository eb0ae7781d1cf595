# proffer-stream: one image for every process (worker, sink, gateway, migrate, topics, keys).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PROFFER_DATA_DIR=/var/lib/proffer

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proffer_stream ./proffer_stream
RUN pip install . \
 && useradd --system --create-home --home-dir /var/lib/proffer proffer

USER proffer
ENTRYPOINT ["proffer-stream"]
CMD ["gateway"]
