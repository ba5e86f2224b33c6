# syntax=docker/dockerfile:1
# pushgate on Node 24 (the current LTS; the test suite runs on 20 and 24). Three stages: build the
# TypeScript, install production dependencies only, and a runtime image holding just those, the
# compiled dist/, the device library's browser file (served at /device.js), the .proto files (gRPC
# reflection loads them) and package.json, run as a non-root user. `npm ci --ignore-scripts`: the
# package's "prepare" would build before the sources are copied, and no dependency needs an install
# script. Both `npm ci` stages copy every workspace's package.json: the lock lists the workspaces.
# Build: docker build -t pushgate .   Run: see docker-compose.yml, or README "Containers".
# Not built on the project's machines (no container runtime there); test/unit/deploy-files.test.ts
# checks it.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
COPY packages/device/package.json packages/device/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-lua.mjs scripts/make-bin-executable.mjs scripts/
COPY packages/device/tsconfig.json packages/device/
COPY packages/device/src packages/device/src
COPY src src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
COPY packages/device/package.json packages/device/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    PUSHGATE_HOST=0.0.0.0 \
    PUSHGATE_GRPC_HOST=0.0.0.0 \
    PUSHGATE_HTTP_PORT=3000 \
    PUSHGATE_GRPC_PORT=50051
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
# dist/http/device-script.js serves ../../packages/device/dist/core.js from its own place.
COPY --from=build /app/packages/device/dist/core.js packages/device/dist/core.js
COPY proto proto
COPY package.json ./
# The node image's unprivileged user (uid 1000); the files above stay root's, read-only to it.
USER node
EXPOSE 3000 50051
# /healthz answers 200 while the node is up and 503 while it drains or Redis is unreachable.
# No curl in the slim image: Node's fetch does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PUSHGATE_HTTP_PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains (PUSHGATE_SHUTDOWN_GRACE_MS, 10 s by default); give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
