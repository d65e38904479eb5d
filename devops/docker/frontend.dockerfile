# syntax=docker/dockerfile:1
# The web app image: the Next.js standalone server (`node server.js`) on Alpine.
# Build from the repository root:
#   docker build -f devops/docker/frontend.dockerfile -t videoconf-frontend:0.1.0 .
# Base images are pinned by tag; pin them by digest too where you can resolve one
# (docker buildx imagetools inspect node:22.21.1-alpine3.22).
# No URL or secret is baked in: BACKEND_URL is read at run time.

# Stage 1: dependencies from the lockfile, then `npm run build`, which writes
# .next/standalone (server.js and the node_modules it needs) with copies of .next/static
# and public beside it.
FROM node:22.21.1-alpine3.22 AS builder
ENV NEXT_TELEMETRY_DISABLED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
WORKDIR /src
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci
COPY frontend/ ./
RUN npm run build

# Stage 2: the runtime. Only the standalone output, owned by root and read-only to the
# unprivileged user that runs it; .next/cache is the one place it writes.
FROM node:22.21.1-alpine3.22
LABEL org.opencontainers.image.title="videoconf-frontend" \
      org.opencontainers.image.description="Web app of the videoconf WebRTC platform (Next.js standalone)" \
      org.opencontainers.image.source="https://github.com/RoseWrightdev/Video-Conferencing"
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    PORT=3000 \
    HOSTNAME=0.0.0.0
WORKDIR /app
COPY --from=builder /src/.next/standalone ./
RUN mkdir -p .next/cache && chown 10001:10001 .next/cache
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "server.js"]
