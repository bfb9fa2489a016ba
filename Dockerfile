# Multi-stage build: compile TypeScript, then ship production dependencies and dist/ only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Lifecycle scripts (prepare compiles and makes the embedded database's template) need the sources: build below.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY kit ./kit
COPY src ./src
COPY modules ./modules
COPY adapters ./adapters
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
