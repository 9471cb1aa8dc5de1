# Progression in production: one image for the web server, the worker and beat.
# docs/deploy.md explains it; compose.yaml starts it. Every process is a `crm/serve`
# command, the same commands tests/crm/test_production.py runs in CI.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PROGRESSION_VAR_DIR=/var/lib/progression \
    PROGRESSION_DOCUMENTS_DIR=/var/lib/progression/documents \
    STATIC_ROOT=/app/staticfiles

RUN pip install --no-cache-dir uv==0.13.9 \
 && useradd --system --home-dir /app progression
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY manage.py ./
COPY crm crm
COPY pipeline pipeline
COPY forecasting forecasting
COPY templates templates
COPY static static

# Static files go into the image (WhiteNoise serves them); the key exists only for this
# step, so that the production settings load.
RUN DEBUG=0 SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
      crm/serve collectstatic \
 && mkdir -p /var/lib/progression/documents \
 && chown -R progression /var/lib/progression

USER progression
EXPOSE 8000
CMD ["crm/serve", "web"]
