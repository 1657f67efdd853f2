# vonage-bridge: Vonage Voice <-> OpenAI Realtime bridge, one container.
#   docker build -t vonage-bridge .
#   docker run --env-file .env -p 3000:3000 -v "$PWD/config:/app/config:ro" \
#     -v vonage-bridge-data:/app/data vonage-bridge
# Configuration comes from the environment only (fly secrets / --env-file); .dockerignore
# keeps every .env* file out of the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

# Runtime dependencies only, no [dev] extras, pinned with their hashes in requirements.lock
# (pip-compile --generate-hashes from pyproject.toml; see README "Reproducible images"), so
# two builds install the same files; then the package itself with --no-deps. aiohttp, numpy,
# soxr and cryptography ship manylinux wheels for 3.11, so slim needs no compiler. The source
# is built from /tmp/src and removed, so only the installed package remains.
COPY requirements.lock /tmp/src/
RUN pip install --require-hashes --no-deps -r /tmp/src/requirements.lock
COPY pyproject.toml README.md /tmp/src/
COPY vonage_bridge /tmp/src/vonage_bridge
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

# An unprivileged user; the app only reads its working directory, and writes call records
# to the SQLite file in /app/data and recordings (RECORD_CALLS) to /app/data/recordings:
# lost on redeploy unless a volume is mounted on /app/data (fly.toml mounts one; set
# DATABASE_URL=postgresql://... to keep the records elsewhere).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin bridge \
    && install -d -o bridge -g bridge /app/data /app/data/recordings \
    && install -d /app/config
ENV DATABASE_URL=sqlite:////app/data/calls.db \
    RECORDINGS_DIR=/app/data/recordings
# /app/config: mount your own files here (read-only is enough) and name them in the variables:
# SYSTEM_MESSAGE_PATH=/app/config/system-message.txt, FAQ_KB_PATH=/app/config/faq.json,
# ASSISTANTS_FILE=/app/config/assistants.json, PRICES_FILE=/app/config/prices.json, and
# TOOLS_MODULE=my_tools for /app/config/my_tools.py (the directory is on PYTHONPATH). Empty by
# default.
ENV PYTHONPATH=/app/config
WORKDIR /app
# The persona, read from SYSTEM_MESSAGE_PATH (default: system-message.txt in the cwd).
COPY system-message.txt ./

USER bridge
EXPOSE 3000
# Prometheus metrics (METRICS_PORT; README "Metrics"): for a scraper, never the public.
EXPOSE 9091

# slim has no curl: ask GET /health with the standard library (non-2xx or no answer -> 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["python", "-m", "vonage_bridge"]
