# kubetune's image for the CronJob in deploy/: runtime dependencies only, non-root.
#   docker build -t REGISTRY/kubetune:TAG . && docker push REGISTRY/kubetune:TAG
#   cd deploy/base && kustomize edit set image kubetune=REGISTRY/kubetune:TAG
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analyzer ./analyzer
COPY forecasting ./forecasting
COPY recommenders ./recommenders
COPY dashboards ./dashboards
COPY kubetune ./kubetune
# a wheel of kubetune and of each runtime dependency; no test extras
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KUBETUNE_DATA_DIR=/opt/kubetune/data \
    HOME=/tmp
RUN groupadd --gid 10001 kubetune \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kubetune
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels kubetune && rm -rf /wheels
# the pricing catalog (needed) and the bundled sample (for `kubetune report` with no source)
COPY data /opt/kubetune/data
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["kubetune"]
CMD ["report", "--help"]
