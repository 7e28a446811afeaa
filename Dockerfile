# One image for both halves of Rayline: the operator's Deployment runs `rayline operator`, and the
# RayCluster pods the operator creates run `rayline start --head ...` / `rayline start --address ...`.
#   docker build -t rayline/rayline:0.1.0 .

ARG NODE_IMAGE=node:24-slim

# ---- build: compile src/ to dist/, then keep only the production dependencies -------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so that a source change reuses this layer. The `node` devDependency (the
# Node 24 binary as an npm package, for machines whose system Node is older) is installed here only
# so that `npm ci` matches the lockfile; the base image already has Node 24 and the prune drops it.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund
# The examples import packages that are devDependencies of the repository (NLP models and
# tokenizers, not needed by Rayline itself). Install them, at the lockfile's versions, into a
# node_modules of their own that will sit at /app/examples/node_modules.
RUN npm install --prefix /examples-deps --no-save --no-package-lock --no-audit --no-fund \
      $(node -p 'const l = require("./package-lock.json").packages; process.argv.slice(1).map((n) => `${n}@${l["node_modules/" + n].version}`).join(" ")' \
        gpt-tokenizer wink-nlp wink-eng-lite-web-model wink-naive-bayes-text-classifier)

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the user that runs: the application never writes its own code.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY crds ./crds
COPY examples ./examples
COPY --from=build /examples-deps/node_modules ./examples/node_modules
# `rayline` on PATH too, for `kubectl exec POD -- rayline serve status` and the like.
RUN ln -s /app/bin/rayline.js /usr/local/bin/rayline
# uid 1000 is the base image's `node` user: non-root, and present in /etc/passwd (the runtime asks
# for its user name). Scratch files (sockets, compiled user code) go to /tmp.
USER 1000:1000
# 6379 cluster RPC, 8265 REST API, 8000 HTTP proxy, 8080 metrics, 8081 operator health probes.
EXPOSE 6379 8265 8000 8080 8081
ENTRYPOINT ["node", "/app/bin/rayline.js"]
CMD ["--help"]
