# syntax=docker/dockerfile:1
# One image for the project's three programs (the entrypoint is node; the program is the first
# argument, relative to /app):
#   flipt-injector  dist/src/cli.js serve --tls-cert ... --tls-key ... --config ...
#   flipt-exporter  dist/exporter/main.js
#   flipt-bucket-cache  dist/cache/main.js
#   sample-app      dist/src/sample-app/main.js
# Build: docker build -t flipt-sidecar-injector:0.1.0 .   (deploy.sh: minikube image build)
#
# Base images are pinned by tag AND digest. The digests were taken from public references and could
# not be checked from this project's machines (no container registry is reachable there): verify
# them when bumping, e.g. `docker buildx imagetools inspect node:24.11-bookworm-slim`.

# --- build: compile TypeScript to dist/ with the dev dependencies ------------------------------
FROM node:24-bookworm-slim@sha256:3638d9a6fe4030bd716be989438248074489337ba3275657f93595428be4fc03 AS build
WORKDIR /src
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
# All dependencies: TypeScript, and the `node` devDependency whose Node 24 runs the npm scripts.
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY exporter ./exporter
COPY cache ./cache
RUN npm run build

# --- deps: production dependencies only -----------------------------------------------------------
FROM node:24-bookworm-slim@sha256:3638d9a6fe4030bd716be989438248074489337ba3275657f93595428be4fc03 AS deps
WORKDIR /app
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
# No production dependency has an install script (only the dev-only `node` package does).
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# --- runtime: distroless Node 24 (no shell, no npm, no compilers), numeric non-root user --------
FROM gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a
WORKDIR /app
ENV NODE_ENV=production PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
COPY --chown=0:0 package.json ./
# Files are root-owned and read-only to the process; nothing is written at run time, so the
# containers run with readOnlyRootFilesystem: true.
USER 65532:65532
EXPOSE 8443 3000 9090
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["dist/src/cli.js", "--help"]
