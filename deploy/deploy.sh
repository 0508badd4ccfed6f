#!/usr/bin/env bash
# Deploy the checked-out branch on this host, rolling back if the new release isn't healthy.
#
#   deploy/deploy.sh [APP_DIR [COMMIT]]
#   ssh user@vps 'bash -s -- ~/digitrec <sha>' < deploy/deploy.sh     (what CI runs)
#
# APP_DIR defaults to the repository this script lives in; COMMIT to the tip of its branch.
#
# 1. remembers the running commit and tags the running images as :rollback
# 2. fast-forwards to COMMIT, rebuilds and restarts with `docker compose up -d --build`
# 3. waits, through the proxy, for the release's own health: /health answers and /ready says
#    the model is loaded. Not for the database: while it is down the api answers predictions
#    and queues their rows in the outbox, and rolling back would not bring the database back.
# 4. once healthy: builds the learner image from the same commit (`up` leaves it alone: it
#    runs from cron, `docker compose --profile learn run --rm learner`); a failed build only
#    warns, and the next run uses the previous learner image
# 5. on failure: checks out the remembered commit, restores the :rollback images, restarts
set -euo pipefail

APP_DIR="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
COMMIT="${2:-}"
HEALTHY_TIMEOUT_S="${HEALTHY_TIMEOUT_S:-180}"
POLL_INTERVAL_S="${POLL_INTERVAL_S:-3}"
IMAGES=(digitrec-api digitrec-app)

cd "$APP_DIR"
# Same defaults as docker-compose.yaml; .env may override them.
API_BIND=127.0.0.1
API_PORT=8000
DIGITREC_IMAGE_TAG=latest
if [[ -f .env ]]; then
    API_BIND="$(sed -n 's/^DIGITREC_API_BIND=//p' .env | tail -n 1)"
    API_BIND="${API_BIND:-127.0.0.1}"
    API_PORT="$(sed -n 's/^API_PORT=//p' .env | tail -n 1)"
    API_PORT="${API_PORT:-8000}"
    DIGITREC_IMAGE_TAG="$(sed -n 's/^DIGITREC_IMAGE_TAG=//p' .env | tail -n 1)"
    DIGITREC_IMAGE_TAG="${DIGITREC_IMAGE_TAG:-latest}"
fi
if [[ $API_BIND == 0.0.0.0 ]]; then
    API_BIND=127.0.0.1  # bound to every address: ask through loopback
fi
API_URL="http://${API_BIND}:${API_PORT}"
# In /ready's JSON body, e.g. {"model":true,"database":false,...}.
MODEL_LOADED='"model"[[:space:]]*:[[:space:]]*true'
DATABASE_UP='"database"[[:space:]]*:[[:space:]]*true'

log() { printf '%s deploy: %s\n' "$(date -u +%FT%TZ)" "$*"; }

# /ready's body, whatever its status: it is 503 while the database is down and the outbox
# full, a state of the database rather than of the release.
readiness() { curl --silent --max-time 5 "${API_URL}/ready"; }

release_healthy() {
    local body
    curl --silent --fail --max-time 5 "${API_URL}/health" >/dev/null || return 1
    body="$(readiness)" || return 1
    [[ $body =~ $MODEL_LOADED ]]
}

wait_healthy() {
    local deadline=$((SECONDS + HEALTHY_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if release_healthy; then
            return 0
        fi
        sleep "$POLL_INTERVAL_S"
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
if docker compose up -d --build --remove-orphans && wait_healthy; then
    body="$(readiness || true)"
    log "healthy at ${API_URL}: ${body}"
    if [[ ! $body =~ $DATABASE_UP ]]; then
        log "warning: the database does not answer; predictions queue in the outbox until it does"
    fi
    if ! docker compose --profile learn build learner; then
        log "warning: the learner image did not build; the next learner run uses the previous one"
    fi
    docker image prune --force >/dev/null
    exit 0
fi

log "not healthy after ${HEALTHY_TIMEOUT_S} s; rolling back to ${previous_commit}"
docker compose ps
docker compose logs --tail 50 api || true
git reset --hard "$previous_commit"
for image in "${IMAGES[@]}"; do
    if docker image inspect "${image}:rollback" >/dev/null 2>&1; then
        docker tag "${image}:rollback" "${image}:${DIGITREC_IMAGE_TAG}"
    fi
done
docker compose up -d --no-build --remove-orphans
if wait_healthy; then
    log "rolled back; the previous version is healthy"
else
    log "rolled back, but the previous version is not healthy either"
fi
exit 1
