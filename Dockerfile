# The tubetrace API. Neo4j runs beside it (docker-compose.yml): NEO4J_URI is required here.
# tests/test_image.py does what this file does without Docker (its COPY list into an empty
# folder, `pip install .`, `tubetrace --help`, the CMD answering /healthz), so it cannot drift.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY cypher cypher
COPY api api
COPY loaders loaders
COPY cli cli
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /data tubetrace \
 && mkdir -p /data && chown tubetrace:tubetrace /data && chmod 0700 /data
# The API's home: audit journals not yet in Neo4j (replayed at the next start). Keep it on a
# volume: a journal lost with the container is audit entries lost.
ENV TUBETRACE_HOME=/data
VOLUME ["/data"]
USER tubetrace
EXPOSE 8000
# Alive and the database answers (503 otherwise); /readyz adds schema and journals.
HEALTHCHECK --interval=10s --timeout=5s --retries=12 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status==200 else 1)"
# TUBETRACE_WORKERS sets the number of API processes (default 1).
CMD ["tubetrace", "serve", "--host", "0.0.0.0", "--port", "8000"]
