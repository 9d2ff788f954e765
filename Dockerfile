# syntax=docker/dockerfile:1
# redis-istio-guard admission webhook image.
#   docker build -t redis-istio-guard:0.1.0 .
# Three stages: build (all dependencies, compiles src/ to dist/), deps (production dependencies
# only), and the runtime image, which holds dist/, the production node_modules and package.json.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script would build before the sources are copied, and the
# "node" devDependency's installer is not needed (the base image provides Node 24).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="redis-istio-guard" \
      org.opencontainers.image.description="Admission webhook for Redis Enterprise behind Istio" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The base image's unprivileged "node" user, numeric so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8443
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
