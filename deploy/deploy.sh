#!/usr/bin/env bash
# Deploy the checked-out branch on this host, rolling back if it doesn't become ready.
#
#   deploy/deploy.sh [APP_DIR [COMMIT]]
#   ssh user@vps 'bash -s -- ~/digitrec <sha>' < deploy/deploy.sh     (what CI runs)
#
# APP_DIR defaults to the repository this script lives in; COMMIT to the tip of its branch.
#
# 1. remembers the running commit and tags the running images as :rollback
# 2. fast-forwards to COMMIT, rebuilds and restarts with `docker compose up -d --build`
# 3. waits for /ready through the proxy
# 4. on failure: checks out the remembered commit, restores the :rollback images, restarts
set -euo pipefail

APP_DIR="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
COMMIT="${2:-}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-180}"
IMAGES=(digitrec-api digitrec-app)

cd "$APP_DIR"
# Same defaults as docker-compose.yaml; .env may override them.
API_PORT=8000
DIGITREC_IMAGE_TAG=latest
if [[ -f .env ]]; then
    API_PORT="$(sed -n 's/^API_PORT=//p' .env | tail -n 1)"
    API_PORT="${API_PORT:-8000}"
    DIGITREC_IMAGE_TAG="$(sed -n 's/^DIGITREC_IMAGE_TAG=//p' .env | tail -n 1)"
    DIGITREC_IMAGE_TAG="${DIGITREC_IMAGE_TAG:-latest}"
fi
READY_URL="http://127.0.0.1:${API_PORT}/ready"

log() { printf '%s deploy: %s\n' "$(date -u +%FT%TZ)" "$*"; }

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if curl --silent --fail --max-time 5 "$READY_URL" >/dev/null; then
            return 0
        fi
        sleep 3
    done
    return 1
}

previous_commit="$(git rev-parse HEAD)"
log "running commit ${previous_commit}"
for image in "${IMAGES[@]}"; do
    if docker image inspect "${image}:${DIGITREC_IMAGE_TAG}" >/dev/null 2>&1; then
        docker tag "${image}:${DIGITREC_IMAGE_TAG}" "${image}:rollback"
    fi
done

if [[ -n "$COMMIT" ]]; then
    git fetch --quiet origin
    git merge --ff-only "$COMMIT"
else
    git pull --ff-only
fi
log "deploying commit $(git rev-parse HEAD)"
if docker compose up -d --build --remove-orphans && wait_ready; then
    log "ready at ${READY_URL}"
    docker image prune --force >/dev/null
    exit 0
fi

log "not ready after ${READY_TIMEOUT_S} s; rolling back to ${previous_commit}"
docker compose ps
docker compose logs --tail 50 api || true
git reset --hard "$previous_commit"
for image in "${IMAGES[@]}"; do
    if docker image inspect "${image}:rollback" >/dev/null 2>&1; then
        docker tag "${image}:rollback" "${image}:${DIGITREC_IMAGE_TAG}"
    fi
done
docker compose up -d --no-build --remove-orphans
if wait_ready; then
    log "rolled back; the previous version is ready"
else
    log "rolled back, but the previous version is not ready either"
fi
exit 1
